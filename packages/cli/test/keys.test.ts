import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { resolvePaths } from '@tandem/core';

// The built command, as an operator runs it.
const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

function tandem(home: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, TANDEM_HOME: home, TANDEM_CONFIG: join(home, 'cluster.yaml') };
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { env, timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

const Z85_KEY = /^[0-9a-zA-Z.\-:+=^!/*?&<>()[\]{}@%$#]{40}$/;

t.test('keys generate writes a secret key only root can read and prints the publicKey line for cluster.yaml', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'tnd-keys-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  const state = resolvePaths({ TANDEM_HOME: home }).state;

  const first = await tandem(home, ['keys', 'generate']);
  t.equal(first.code, 0, first.stderr);
  const printed = /publicKey: "(.*)"/.exec(first.stdout)?.[1] ?? '';
  t.match(printed, Z85_KEY, 'a 40-character Z85 public key is printed');
  const secret = readFileSync(join(state, 'curve.key'), 'utf8').trim();
  t.match(secret, Z85_KEY);
  t.not(secret, printed);
  t.equal(readFileSync(join(state, 'curve.pub'), 'utf8').trim(), printed, 'curve.pub holds the printed key');
  t.equal(statSync(join(state, 'curve.key')).mode & 0o777, 0o600, 'the secret key is mode 0600');

  const again = await tandem(home, ['keys', 'generate']);
  t.equal(again.code, 1);
  t.match(again.stderr, /^tandem: \S+curve\.key already exists: .*\(use --force to replace it\)\n$/);
  t.equal(readFileSync(join(state, 'curve.key'), 'utf8').trim(), secret, 'the existing key is kept');

  const forced = await tandem(home, ['keys', 'generate', '--force']);
  t.equal(forced.code, 0, forced.stderr);
  const replaced = /publicKey: "(.*)"/.exec(forced.stdout)?.[1];
  t.match(replaced, Z85_KEY);
  t.not(replaced, printed, '--force makes a new pair');
  t.not(readFileSync(join(state, 'curve.key'), 'utf8').trim(), secret);
  t.equal(statSync(join(state, 'curve.key')).mode & 0o777, 0o600, 'the replaced secret key is mode 0600 too');
});
