// Operations across the cluster (DESIGN.md 6.6) on three servers: `--node` asks another server,
// `config diff|apply` distribute a new configuration with a generation (refused while a server is
// down: it would be left on the old one; two applies at once go one after the other through the
// coordinator), `node down` moves a server's groups away before it
// shuts down, and `cluster shutdown` stops every server. OS actions are dry runs here.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { callOnce } from '@tandem/core';
import { tandem } from '@tandem/protocol';
import { ROOT_ONLY, TestCluster } from './harness.mjs';
import { webGroup, webOnlineOn, type JsonGroup } from './web.js';

const skip = ROOT_ONLY;

const FIP = '10.71.1.203';

const cluster = skip
  ? undefined
  : new TestCluster({
      // flaky cannot start on s1: its start failure's failover rung sends it on to s3.
      groups: `${webGroup(FIP, ['s1', 's2', 's3'])}
  - name: flaky
    servers: [s1, s3]
    resources:
      - { name: flaky-r, type: exec, start: '[ "$TANDEM_SERVER_NAME" != s1 ]', onStartFailure: { retries: 0, failovers: 1, finalAction: hold } }`,
      monitors:
        '  - { name: app-alive, type: pid, target: app, interval: 500ms, recovery: { target: web, reactivations: 0, failovers: 1, finalAction: none } }',
    });
t.teardown(() => cluster?.destroy({ failed: !t.passing() }));
t.before(async () => {
  if (!cluster) return;
  await cluster.start();
});

t.test('a group that cannot start on s1 fails over to s3 through the coordinator (the start-failure rung)', { skip }, async (t) => {
  const c = cluster!;
  await c.waitFor('flaky online on s3', async () => {
    const g = (await c.status('s2')).groups.find((x: JsonGroup) => x.name === 'flaky');
    return g?.state === 'online' && g.server === 's3';
  });
  t.ok(
    c.alerts('s1').some((a) => a.id === 'TND-RC-0103' && a.message.includes('flaky-r')),
    's1 raised the start failure',
  );
  await c.waitFor(
    's1 to see flaky on s3',
    async () => (await c.status('s1')).groups.find((x: JsonGroup) => x.name === 'flaky')?.server === 's3',
  );
  t.match(
    (await c.status('s1')).groups.find((x: JsonGroup) => x.name === 'flaky'),
    { state: 'online', server: 's3' },
    's1 stopped its failed start and shows flaky on s3',
  );
});

t.test('--node asks another server: its status, its configuration generation', { skip }, async (t) => {
  const c = cluster!;
  await webOnlineOn(c, 's1', 's1');
  const r = await c.cli('s1', ['--node', 's3', 'status', '--json']);
  t.equal(r.code, 0, r.stderr);
  t.equal(JSON.parse(r.stdout).server, 's3', 's1 answered with the status of s3');
  const bad = await c.cli('s1', ['--node', 'nowhere', 'status']);
  t.not(bad.code, 0);
  t.match(bad.stderr, /no server named nowhere/);
});

t.test(
  'config apply while a server is down is refused and changes nothing; once it is back, every server installs it',
  { skip },
  async (t) => {
    const c = cluster!;
    const original = readFileSync(c.config, 'utf8');
    const next = join(c.dir, 'next.yaml');
    writeFileSync(next, original.replace('stopTimeout: 5s', 'stopTimeout: 6s'));

    const diff = await c.cli('s2', ['config', 'diff', next]);
    t.equal(diff.code, 0, diff.stderr);
    t.match(diff.stdout, /groups\[web\]\.resources\[app\]\.stopTimeout/, 'the diff names the changed setting');
    t.match(diff.stdout, /restart-daemons/, 'and the level it needs');

    c.powerCut('s3');
    await c.waitFor('s1 to see s3 offline', async () =>
      (await c.status('s1')).servers.some((s: { name: string; state: string }) => s.name === 's3' && s.state === 'offline'),
    );
    const refused = await c.cli('s1', ['config', 'apply', next]);
    t.not(refused.code, 0, 'refused');
    t.match(refused.stderr, /s3 cannot be reached/, `the refusal names the server: ${refused.stderr.trim()}`);
    t.equal(readFileSync(c.config, 'utf8'), original, 'the configuration file is unchanged');

    await c.powerOn('s3');
    await c.waitFor('s1 to reach s3', async () =>
      (await c.status('s1')).servers.some((s: { name: string; reach: string }) => s.name === 's3' && s.reach === 'reachable'),
    );
    const applied = await c.cli('s1', ['config', 'apply', next]);
    t.equal(applied.code, 0, `${applied.stdout}${applied.stderr}`);
    t.match(applied.stdout, /generation 1/);
    for (const s of c.servers) {
      const shown = await c.cli('s1', ['--node', s, 'config', 'show', '--json']);
      t.equal(shown.code, 0, shown.stderr);
      t.match(JSON.parse(shown.stdout), { generation: 1 }, `${s} has generation 1`);
    }
    t.match(readFileSync(c.config, 'utf8'), /stopTimeout: 6s/, 'the file holds the new configuration');
  },
);

t.test('two operators apply at once, through s2 and on s3: the coordinator applies one after the other', { skip }, async (t) => {
  const c = cluster!;
  const original = readFileSync(c.config, 'utf8');
  const files = ['7s', '8s'].map((v) => {
    const file = join(c.dir, `next-${v}.yaml`);
    writeFileSync(file, original.replace(/stopTimeout: \d+s/, `stopTimeout: ${v}`));
    return file;
  });
  // One on s1 addressing s2 (--node: s2 answers as for its own CLI and sends it on to s1, the coordinator).
  const [a, b] = await Promise.all([
    c.cli('s1', ['--node', 's2', 'config', 'apply', files[0]!]),
    c.cli('s3', ['config', 'apply', files[1]!]),
  ]);
  t.equal(a.code, 0, `s2's apply: ${a.stdout}${a.stderr}`);
  t.equal(b.code, 0, `s3's apply: ${b.stdout}${b.stderr}`);
  const generation = (out: string): number => Number(/generation (\d+)/.exec(out)?.[1] ?? NaN);
  t.same([generation(a.stdout), generation(b.stdout)].sort(), [2, 3], 'two generations, one after the other');
  for (const s of c.servers) {
    const shown = await c.cli('s1', ['--node', s, 'config', 'show', '--json']);
    t.match(JSON.parse(shown.stdout), { generation: 3 }, `${s} has generation 3`);
  }
  const last = generation(a.stdout) === 3 ? '7s' : '8s';
  t.match(readFileSync(c.config, 'utf8'), new RegExp(`stopTimeout: ${last}`), 'the file holds the apply of generation 3');

  // An apply another node manager sent on reaches s2, which is not the coordinator: not sent on again.
  const forwarded = { action: tandem.v1.ConfigAction.CONFIG_ACTION_APPLY, yaml: original, forwarded: true };
  await t.rejects(callOnce(c.paths('s2').rpc('nm'), { config: forwarded }, { timeoutMs: 5000, origin: 'tandem-nm' }), {
    code: 'UNAVAILABLE',
    message: /s2 is not the coordinator \(s1 is, as seen here\)/,
  });
  t.match(readFileSync(c.config, 'utf8'), new RegExp(`stopTimeout: ${last}`), 'and nothing changed');
});

t.test('the failover rung of a monitor on s1 moves the group to s2 through the coordinator', { skip }, async (t) => {
  const c = cluster!;
  await webOnlineOn(c, 's1', 's2');
  const app = (await c.status('s1')).groups
    .find((g: JsonGroup) => g.name === 'web')
    ?.resources.find((r: { name: string }) => r.name === 'app');
  t.ok(app?.pid > 0, 'the application runs on s1');
  process.kill(app.pid, 'SIGKILL');
  await webOnlineOn(c, 's2', 's3');
  t.ok(
    c.alerts('s1').some((a) => a.id === 'TND-RM-0201'),
    's1 raised the monitor error',
  );
  t.notOk(c.hasAddress('s1', 'ic0', FIP), 's1 released the floating IP');
  t.ok(c.hasAddress('s2', 'ic0', FIP), 's2 holds it');
  t.same(c.emergencies('s1'), [], 'a failed application is no emergency');
});

t.test('node down moves the server’s groups away, then stops its cluster service', { skip }, async (t) => {
  const c = cluster!;
  await webOnlineOn(c, 's2', 's3');
  const r = await c.cli('s3', ['node', 'down', 's2'], 60_000);
  t.equal(r.code, 0, `${r.stdout}${r.stderr}`);
  await webOnlineOn(c, 's1', 's3');
  t.equal((await c.status('s2')).state, 'stopped', 's2 stopped its cluster service');
  t.match(c.daemonLog('s2', 'nm'), /shutdown asked by an operator/, 's2 was shut down (a dry run here)');
  t.notOk(c.hasAddress('s2', 'ic0', FIP));
  t.ok(c.hasAddress('s1', 'ic0', FIP));
});

t.test('cluster shutdown stops every server’s cluster service and shuts each down', { skip }, async (t) => {
  const c = cluster!;
  // s2 is stopped already (node down): what counts is that this command shuts each server down once more.
  const shutdowns = (s: string): number => (c.daemonLog(s, 'nm').match(/shutdown asked by an operator/g) ?? []).length;
  const before = Object.fromEntries(c.servers.map((s) => [s, shutdowns(s)]));
  const r = await c.cli('s3', ['cluster', 'shutdown'], 60_000);
  t.equal(r.code, 0, `${r.stdout}${r.stderr}`);
  for (const s of c.servers) {
    t.equal((await c.status(s)).state, 'stopped', `${s} stopped its cluster service`);
    t.equal(shutdowns(s), before[s]! + 1, `${s} was shut down (a dry run here)`);
    t.notOk(c.hasAddress(s, 'ic0', FIP), `${s} holds no floating IP`);
  }
  t.same(
    c.servers.flatMap((s) => c.emergencies(s)),
    [],
    'nobody fenced itself on the way down',
  );
});
