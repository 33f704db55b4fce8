// Generates static protobufjs code and its type declarations from proto/tandem/v1/*.proto.
// The output (gen/) is build output: never edit it, never commit it.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = join(here, '..');
const protoRoot = join(pkg, '..', '..', 'proto');
const protoDir = join(protoRoot, 'tandem', 'v1');
const out = join(pkg, 'gen', 'tandem.js');
const files = readdirSync(protoDir)
  .filter((f) => f.endsWith('.proto'))
  .sort()
  .map((f) => join(protoDir, f));

const newestProto = Math.max(...files.map((f) => statSync(f).mtimeMs), statSync(here).mtimeMs);
if (existsSync(out) && existsSync(out.replace(/\.js$/, '.d.ts')) && statSync(out).mtimeMs > newestProto) {
  process.exit(0);
}
mkdirSync(dirname(out), { recursive: true });
const bin = (name) => join(pkg, '..', '..', 'node_modules', '.bin', name);
const pbjs = (extra, file) =>
  execFileSync(
    bin('pbjs'),
    [
      '-t',
      'static-module',
      '-w',
      'esm',
      '--force-number',
      '--null-semantics',
      '--no-delimited',
      '--no-typeurl',
      ...extra,
      '-p',
      protoRoot,
      '-o',
      file,
      ...files,
    ],
    { cwd: protoRoot, stdio: 'inherit' },
  );
// The type declarations come from a commented build (pbts reads the JSDoc); the code every
// process loads is the same code without comments or indentation, which parses faster.
const documented = join(dirname(out), 'tandem.documented.js');
pbjs([], documented);
execFileSync(bin('pbts'), ['-o', out.replace(/\.js$/, '.d.ts'), documented], { stdio: 'inherit' });
rmSync(documented);
pbjs(['--no-comments', '--no-beautify'], out);
