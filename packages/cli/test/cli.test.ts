import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { RpcServer, TandemError, createLogger, resolvePaths, type RpcHandler } from '@tandem/core';

// The built command, as an operator runs it.
const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function tandem(home: string, args: string[]): Promise<Run> {
  const env = { ...process.env, TANDEM_HOME: home, TANDEM_CONFIG: join(home, 'cluster.yaml') };
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { env, timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

function emptyHome(t: Tap.Test): string {
  const home = mkdtempSync(join(tmpdir(), 'tnd-cli-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  return home;
}

/** A stand-in tandem-nm on the socket the CLI uses. */
async function fakeNm(t: Tap.Test, home: string, handle: RpcHandler): Promise<void> {
  const paths = resolvePaths({ TANDEM_HOME: home });
  mkdirSync(paths.run, { recursive: true });
  const server = new RpcServer(
    paths.rpc('nm'),
    handle,
    createLogger({ daemon: 'nm', server: 'node1', logsDir: paths.logs, console: false }),
  );
  await server.bind();
  t.teardown(() => server.close());
}

const lines = (text: string): string[] => text.split('\n').filter((l) => l !== '');

t.test('a bad argument is a usage error: exit 2 and one line', async (t) => {
  const home = emptyHome(t);
  for (const args of [['status', '--bogus'], ['frobnicate'], [], ['group', 'start'], ['resource', 'stop', 'app']]) {
    const r = await tandem(home, args);
    t.equal(r.code, 2, `tandem ${args.join(' ')}`);
    t.equal(lines(r.stderr).length, 1, r.stderr);
    t.match(r.stderr, /^tandem: /);
    t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
});

t.test('a --timeout beyond what setTimeout can wait (2^31-1 ms) is a usage error', async (t) => {
  const home = emptyHome(t);
  for (const value of ['2147483648', '1e12', '0', '1.5']) {
    const r = await tandem(home, ['--timeout', value, 'status']);
    t.equal(r.code, 2, `--timeout ${value}`);
    t.match(r.stderr, /^tandem: --timeout must be a whole number of milliseconds from 1 to 2147483647\n$/);
  }
  const longest = await tandem(home, ['--timeout', '2147483647', 'status']);
  t.equal(longest.code, 3, 'the largest timeout is accepted (and nm is not running)');
});

t.test('with no tandem-nm running a command exits 3 and says so', async (t) => {
  const home = emptyHome(t);
  const r = await tandem(home, ['status']);
  t.equal(r.code, 3);
  t.equal(lines(r.stderr).length, 1);
  t.match(r.stderr, /^tandem: tandem-nm is not running/);
  t.equal(r.stdout, '');
});

t.test('a broken configuration fails validation with nm down: exit 1 and the path of each fault', async (t) => {
  const home = emptyHome(t);
  const file = join(home, 'broken.yaml');
  writeFileSync(
    file,
    'cluster: { name: demo, emergency: { action: exec, command: "true" } }\nservers: [ { name: node1 } ]\ngroups:\n  - name: web\n    resources:\n      - { name: app, type: exec, start: 5 }\nmonitors: []\n',
  );
  const r = await tandem(home, ['config', 'validate', file]);
  t.equal(r.code, 1);
  t.match(r.stderr, `tandem: configuration ${file} is invalid (1 problem):`);
  t.match(r.stderr, /^ {2}groups\[0\]\.resources\[0\]\.start: must be string$/m);
  t.match(r.stderr, /validated locally: tandem-nm is not running/);

  writeFileSync(
    file,
    'cluster: { name: demo, emergency: { action: exec, command: "true" } }\nservers: [ { name: node1 } ]\ngroups: []\nmonitors: []\n',
  );
  const ok = await tandem(home, ['config', 'validate', file]);
  t.equal(ok.code, 0, ok.stderr);
  t.match(ok.stdout, /is valid \(validated locally: tandem-nm is not running\)/);
});

t.test('status --json carries servers, groups with resources, and monitors', async (t) => {
  const home = emptyHome(t);
  await fakeNm(t, home, async () => ({
    status: {
      cluster: 'demo',
      server: 'node1',
      state: 'online',
      servers: [{ name: 'node1', state: 'online', local: true }],
      groups: [{ name: 'web', state: 'online', server: 'node1', resources: [{ name: 'app', state: 'online', pid: 42, alive: true }] }],
      monitors: [{ name: 'app-alive', state: 'normal' }],
      daemons: [{ name: 'nm', pid: 1, state: 'running' }],
    },
  }));
  const r = await tandem(home, ['status', '--json']);
  t.equal(r.code, 0, r.stderr);
  const json = JSON.parse(r.stdout) as {
    servers: { name: string; state: string }[];
    groups: { name: string; state: string; server: string; resources: { state: string }[] }[];
    monitors: { name: string; state: string }[];
  };
  t.same(
    json.servers.map((s) => [s.name, s.state]),
    [['node1', 'online']],
  );
  t.same(
    json.groups.map((g) => [g.name, g.state, g.server, g.resources.map((x) => x.state)]),
    [['web', 'online', 'node1', ['online']]],
  );
  t.same(
    json.monitors.map((m) => [m.name, m.state]),
    [['app-alive', 'normal']],
  );

  const table = await tandem(home, ['status']);
  t.match(table.stdout, /^cluster demo {2}server node1 {2}state online$/m);
});

t.test('an error from tandem-nm is one line and exit 1; a silent tandem-nm is a timeout, exit 4', async (t) => {
  const home = emptyHome(t);
  let silent = false;
  await fakeNm(t, home, async (request) => {
    if (silent) return new Promise(() => undefined);
    throw new TandemError('REFUSED', `group ${request.group?.group ?? '?'} cannot start: cluster service is stopped`);
  });
  const refused = await tandem(home, ['group', 'start', 'web']);
  t.equal(refused.code, 1);
  t.equal(refused.stderr, 'tandem: group web cannot start: cluster service is stopped\n');
  silent = true;
  const late = await tandem(home, ['--timeout', '300', 'events']);
  t.equal(late.code, 4);
  t.equal(late.stderr, 'tandem: tandem-nm did not answer within 300 ms\n');
});
