import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { RpcServer, TandemError, createLogger, resolvePaths, type RpcHandler } from '@tandem/core';
import { v1 } from '@tandem/protocol';

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
  t.notMatch(ok.stdout, /warning/, 'one server: no warning');

  writeFileSync(
    file,
    'cluster: { name: demo, emergency: { action: exec, command: "true" } }\nservers: [ { name: node1 }, { name: node2 } ]\ngroups: []\nmonitors: []\n',
  );
  const warned = await tandem(home, ['config', 'validate', file]);
  t.equal(warned.code, 0, 'a warning is not a problem');
  t.match(warned.stdout, /^warning: cluster\.networkPartition\.method: .*node2 loses every split to node1/m);
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

t.test('--node names the server on every request to tandem-nm, and is absent without it', async (t) => {
  const home = emptyHome(t);
  const file = join(home, 'cluster.yaml');
  writeFileSync(file, 'cluster: { name: demo }\nservers: [ { name: node1 } ]\ngroups: []\nmonitors: []\n');
  const seen: { body: string; node: string }[] = [];
  await fakeNm(t, home, async (request) => {
    seen.push({ body: request.body ?? '', node: request.node });
    if (request.body === 'status') return { status: { cluster: 'demo', server: 'node2', state: 'online' } };
    if (request.body === 'events') return { events: {} };
    if (request.body === 'logsCollect') return { logs: { path: '/tmp/x.tar.gz', bytes: 1 } };
    if (request.body === 'config') return { config: { problems: [], level: 'none', path: file } };
    return { ack: { message: 'done' } };
  });
  const commands: [string[], string][] = [
    [['status'], 'status'],
    [['cluster', 'stop'], 'cluster'],
    [['group', 'move', 'web', '--server', 'node3'], 'group'],
    [['resource', 'restart', 'web/app'], 'resource'],
    [['monitor', 'suspend'], 'monitor'],
    [['config', 'validate', file], 'config'],
    [['config', 'show'], 'config'],
    [['config', 'diff', file], 'config'],
    [['config', 'apply', file], 'config'],
    [['events'], 'events'],
    [['logs', 'collect'], 'logsCollect'],
  ];
  for (const [args, body] of commands) {
    seen.length = 0;
    const forwarded = await tandem(home, ['--node', 'node2', ...args]);
    t.equal(forwarded.code, 0, `tandem --node node2 ${args.join(' ')}: ${forwarded.stderr}`);
    t.same(seen, [{ body, node: 'node2' }], `tandem --node node2 ${args.join(' ')}`);
  }
  seen.length = 0;
  const after = await tandem(home, ['status', '--node', 'node2']);
  t.equal(after.code, 0, after.stderr);
  t.same(seen, [{ body: 'status', node: 'node2' }], '--node after the command');
  seen.length = 0;
  const local = await tandem(home, ['status']);
  t.equal(local.code, 0, local.stderr);
  t.same(seen, [{ body: 'status', node: '' }], 'no --node: the local node manager answers');
});

t.test('--node is a usage error with a bad name and on commands that run on this machine only', async (t) => {
  const home = emptyHome(t);
  const cases: [string[], RegExp][] = [
    [['--node', '', 'status'], /^tandem: --node "": expected a server name from cluster\.yaml\n$/],
    [['--node', 'node 2', 'status'], /^tandem: --node "node 2": expected a server name/],
    [['--node', 'node2', 'keys', 'generate'], /^tandem: keys generate runs on this machine: it does not take --node\n$/],
    [['--node', 'node2', 'witness', '--port', '0'], /^tandem: witness runs on this machine: it does not take --node\n$/],
    [['--node', 'node2', 'config', 'validate', '--local'], /^tandem: --local validates on this server: it does not go with --node\n$/],
  ];
  for (const [args, stderr] of cases) {
    const r = await tandem(home, args);
    t.equal(r.code, 2, `tandem ${args.join(' ')}`);
    t.match(r.stderr, stderr, `tandem ${args.join(' ')}`);
  }
  writeFileSync(join(home, 'cluster.yaml'), 'cluster: { name: demo }\nservers: [ { name: node1 } ]\ngroups: []\nmonitors: []\n');
  const unreachable = await tandem(home, ['--node', 'node2', 'config', 'validate']);
  t.equal(unreachable.code, 3, 'with --node, validation does not fall back to this machine');
});

t.test('config diff sends the file and prints each change, then the level', async (t) => {
  const home = emptyHome(t);
  const file = join(home, 'new.yaml');
  writeFileSync(file, 'the new text\n');
  const asked: { action: number; yaml: string }[] = [];
  await fakeNm(t, home, async (request) => {
    asked.push({ action: request.config?.action ?? 0, yaml: request.config?.yaml ?? '' });
    if (request.config?.yaml.includes('broken')) {
      return { config: { problems: ['groups[0].resources[0].timeout: must be a duration like "500ms", "3s", "5m" or "1h"'] } };
    }
    return {
      config: {
        changes: ['groups[web].resources[app].timeout: 60000 ms -> 30000 ms', 'monitors: - app-alive'],
        level: 'restart-daemons',
      },
    };
  });
  const r = await tandem(home, ['config', 'diff', file]);
  t.equal(r.code, 0, r.stderr);
  t.same(asked, [{ action: v1.ConfigAction.CONFIG_ACTION_DIFF, yaml: 'the new text\n' }]);
  t.equal(r.stdout, 'groups[web].resources[app].timeout: 60000 ms -> 30000 ms\nmonitors: - app-alive\nlevel: restart-daemons\n');

  const json = await tandem(home, ['config', 'diff', file, '--json']);
  t.equal(json.code, 0, json.stderr);
  t.match(JSON.parse(json.stdout), {
    changes: ['groups[web].resources[app].timeout: 60000 ms -> 30000 ms', 'monitors: - app-alive'],
    level: 'restart-daemons',
    problems: [],
  });

  writeFileSync(file, 'broken\n');
  const bad = await tandem(home, ['config', 'diff', file]);
  t.equal(bad.code, 1);
  t.equal(bad.stdout, '');
  t.equal(
    bad.stderr,
    `tandem: configuration ${file} is invalid (1 problem):\n  groups[0].resources[0].timeout: must be a duration like "500ms", "3s", "5m" or "1h"\n`,
  );

  const missing = await tandem(home, ['config', 'diff', join(home, 'nope.yaml')]);
  t.equal(missing.code, 2);
  t.equal(missing.stderr, `tandem: cannot read ${join(home, 'nope.yaml')}: no such file\n`);
  t.equal(asked.length, 3, 'a file that cannot be read is not sent');
});

t.test('config apply waits 30 s and prints the changes, the generation, where it went, and what to do next', async (t) => {
  const home = emptyHome(t);
  const file = join(home, 'new.yaml');
  writeFileSync(file, 'the new text\n');
  const asked: { action: number; waitMs: number }[] = [];
  await fakeNm(t, home, async (request) => {
    asked.push({ action: request.config?.action ?? 0, waitMs: Number(request.deadlineMs) - Date.now() });
    return {
      config: {
        changes: ['cluster.heartbeat.interval: 1000 ms -> 500 ms'],
        level: 'restart-cluster',
        generation: 7,
        servers: ['node1', 'node2'],
      },
    };
  });
  const r = await tandem(home, ['config', 'apply', file]);
  t.equal(r.code, 0, r.stderr);
  t.equal(asked[0]?.action, v1.ConfigAction.CONFIG_ACTION_APPLY);
  t.ok((asked[0]?.waitMs ?? 0) > 20_000 && (asked[0]?.waitMs ?? 0) <= 30_000, `deadline 30 s ahead (${asked[0]?.waitMs} ms)`);
  t.same(lines(r.stdout).slice(0, 3), [
    'cluster.heartbeat.interval: 1000 ms -> 500 ms',
    'level: restart-cluster',
    'generation 7 installed on node1, node2',
  ]);
  t.match(lines(r.stdout)[3], /^next: restart the whole cluster: /);
  t.equal(lines(r.stdout).length, 4);
});
