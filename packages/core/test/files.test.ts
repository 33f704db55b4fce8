import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '@tandem/core';

const dir = (t: Tap.Test): string => {
  const d = mkdtempSync(join(tmpdir(), 'tandem-files-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
};

t.test('the file is replaced whole, with the mode asked for, and no temporary file is left', async (t) => {
  const d = dir(t);
  const file = join(d, 'state.json');
  writeFileAtomic(file, 'one', 0o600);
  writeFileAtomic(file, 'two', 0o640);
  t.equal(readFileSync(file, 'utf8'), 'two');
  t.equal(statSync(file).mode & 0o777, 0o640, 'the mode asked for, not narrowed by the umask');
  t.same(readdirSync(d), ['state.json'], 'only the file itself');
});

t.test('a failed rename leaves the old content and no temporary file', async (t) => {
  const d = dir(t);
  const target = join(d, 'target');
  mkdirSync(target);
  writeFileAtomic(join(target, 'inside'), 'kept');
  // A file cannot be renamed onto a directory: the write fails after the temporary file is made.
  t.throws(() => writeFileAtomic(target, 'new'), { code: 'EISDIR' });
  t.same(readdirSync(d), ['target'], 'the temporary file is removed');
  t.equal(readFileSync(join(target, 'inside'), 'utf8'), 'kept');
});

// Several writers of one path at once: the servers of a cluster whose configuration file sits on
// shared storage (and the test cluster, whose servers share one file) install it together. The
// writers begin at one moment and write until 300 ms later, so that they overlap (how many
// times each writes depends on the machine's load: not asserted).
t.test('writers in several processes write one path at once without meeting in a temporary file', async (t) => {
  const d = dir(t);
  const file = join(d, 'cluster.yaml');
  const files = fileURLToPath(new URL('../dist/files.js', import.meta.url));
  const beginMs = Date.now() + 500;
  const writer = (name: string): Promise<{ code: number | null; stderr: string; stdout: string }> =>
    new Promise((resolve) => {
      const script = `
        const { writeFileAtomic } = await import(${JSON.stringify(files)});
        while (Date.now() < ${beginMs});
        let n = 0;
        do writeFileAtomic(${JSON.stringify(file)}, '${name} ' + n++);
        while (Date.now() < ${beginMs} + 300);
        process.stdout.write(String(n));`;
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      let stdout = '';
      child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      child.on('close', (code) => resolve({ code, stderr, stdout }));
    });
  const results = await Promise.all(['a', 'b', 'c'].map(writer));
  for (const r of results) t.equal(r.code, 0, `the writer ends without an error ${r.stderr}`.trim());
  t.comment(`writes in the same 300 ms: ${results.map((r) => r.stdout).join(', ')}`);
  t.match(readFileSync(file, 'utf8'), /^[abc] \d+$/, "the file holds one writer's text, whole");
  t.same(readdirSync(d), ['cluster.yaml'], 'no temporary file left');
});
