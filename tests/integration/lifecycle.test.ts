// A real server under pm2: start, status, group operations, the monitor's recovery ladder up to
// its final action, cluster stop/start, and a planned stop that is not an emergency.
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { isAlive } from '@tandem/core';
import { TestServer } from '../helpers/server.mjs';

const server = new TestServer();
t.teardown(() => server.destroy());

const group = async () => (await server.status()).groups.find((g) => g.name === 'web');
const monitor = async () => (await server.status()).monitors.find((m) => m.name === 'app-alive');
const answers = async (): Promise<boolean> => {
  try {
    return (await fetch(`http://127.0.0.1:${server.appPort}/`)).ok;
  } catch {
    return false;
  }
};

t.test('the server starts under pm2 and brings its auto-start group online', async (t) => {
  await server.start();
  await server.waitFor('group web online', async () => (await group())?.state === 'online');
  const json = await server.cli(['status', '--json']);
  t.equal(json.code, 0, json.stderr);
  const status = JSON.parse(json.stdout);
  t.same(
    status.servers.map((s: { name: string; state: string }) => [s.name, s.state]),
    [['node1', 'online']],
  );
  t.match(status.groups, [{ name: 'web', state: 'online', server: 'node1', resources: [{ name: 'app', state: 'online' }] }]);
  t.match(status.monitors, [{ name: 'app-alive' }]);
  await server.waitFor('the application to answer', answers);
  const table = await server.cli(['status']);
  t.equal(table.code, 0);
  t.match(table.stdout, /web\s+online/);
});

t.test('group stop and start are carried out and reported', async (t) => {
  const pid = await server.appPid();
  const stop = await server.cli(['group', 'stop', 'web']);
  t.equal(stop.code, 0, stop.stderr);
  t.equal((await group())?.state, 'offline');
  t.notOk(isAlive(pid), 'the application process is gone');
  await server.waitFor('the active-only monitor to be off while its target is offline', async () => (await monitor())?.state === 'off');
  const start = await server.cli(['group', 'start', 'web']);
  t.equal(start.code, 0, start.stderr);
  t.equal((await group())?.state, 'online');
  await server.waitFor('the application to answer again', answers);
  const unknown = await server.cli(['group', 'start', 'nope']);
  t.equal(unknown.code, 1);
  t.match(unknown.stderr, /no group named "?nope/);
});

t.test('a killed application is restarted by its monitor and the counter grows', async (t) => {
  await server.waitFor('monitor normal', async () => (await monitor())?.state === 'normal');
  const before = await server.appPid();
  process.kill(before, 'SIGKILL');
  await server.waitFor('a new application process', async () => {
    const pid = await server.appPid();
    return pid !== before && pid > 0 && isAlive(pid);
  });
  // The counter stays up during the monitor's start delay (1 s) and resets at its first good check.
  t.equal((await monitor())?.reactivations, 1, 'the reactivation is counted');
  t.ok(
    server.alerts().some((a) => a.id === 'TND-RM-0201'),
    'the monitor error is in the alert log',
  );
  t.ok(
    server.alerts().some((a) => a.id === 'TND-RM-0204'),
    'the reactivation is in the alert log',
  );
  await server.waitFor('the application to answer after recovery', answers);
  await server.waitFor('the counter to reset after a good check', async () => (await monitor())?.reactivations === 0);
});

t.test('an application that does not come back exhausts the reactivations and the final action stops the group', async (t) => {
  await server.waitFor('monitor normal', async () => (await monitor())?.state === 'normal');
  writeFileSync(server.broken, 'the application now fails at once');
  t.teardown(() => rmSync(server.broken, { force: true }));
  process.kill(await server.appPid(), 'SIGKILL');
  await server.waitFor('the group to be stopped by the final action', async () => (await group())?.state === 'offline', 30_000);
  const alerts = server.alerts();
  t.equal(alerts.filter((a) => a.id === 'TND-RM-0204').length, 1 + 2, 'two reactivations in this episode (one before)');
  t.ok(
    alerts.some((a) => a.id === 'TND-RM-0206'),
    'the final action is in the alert log',
  );
  t.notOk(server.emergencyRan(), 'a monitor final action is not an emergency');
  const events = await server.cli(['events', '--json']);
  t.equal(events.code, 0);
  t.match(events.stdout, /TND-RM-0206/);
});

t.test('cluster stop and start: groups stop, monitors are off, nothing is an emergency', async (t) => {
  const reset = await server.cli(['monitor', 'reset']);
  t.equal(reset.code, 0, reset.stderr);
  const restart = await server.cli(['group', 'start', 'web']);
  t.equal(restart.code, 0, restart.stderr);
  const pid = await server.appPid();
  const stop = await server.cli(['cluster', 'stop']);
  t.equal(stop.code, 0, stop.stderr);
  const st = await server.status();
  t.equal(st.state, 'stopped');
  t.equal(st.groups[0]?.state, 'offline');
  t.notOk(isAlive(pid));
  const refused = await server.cli(['group', 'start', 'web']);
  t.not(refused.code, 0, 'group operations are refused while the cluster service is stopped');
  const start = await server.cli(['cluster', 'start']);
  t.equal(start.code, 0, start.stderr);
  await server.waitFor('group web online again', async () => (await group())?.state === 'online');
  t.notOk(server.emergencyRan());
});

t.test('logs collect gathers the logs, the configuration and a status snapshot into one archive', async (t) => {
  const archive = join(server.dir, 'collected.tar.gz');
  const r = await server.cli(['logs', 'collect', '--output', archive]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, archive);
  const list = spawnSync('tar', ['-tzf', archive], { encoding: 'utf8' });
  t.equal(list.status, 0, list.stderr);
  const entries = list.stdout.split('\n');
  t.ok(
    entries.some((e) => e.endsWith('nm.log')),
    'the node manager log is in it',
  );
  t.ok(
    entries.some((e) => e.endsWith('alerts.log')),
    'the alert log is in it',
  );
  t.ok(
    entries.some((e) => e.endsWith('cluster.yaml')),
    'the configuration is in it',
  );
  t.ok(
    entries.some((e) => e.endsWith('status.json')),
    'a status snapshot is in it',
  );
});

t.test('a planned stop of the process tree is not an emergency and stops the application', async (t) => {
  const pid = await server.appPid();
  const r = server.plannedStop();
  t.equal(r.code, 0, r.stderr);
  await server.waitFor('the application to be stopped', () => !isAlive(pid));
  // pm2 delete returns once every app, the guard included, has exited: no late emergency can follow.
  t.notOk(server.emergencyRan(), 'no emergency action ran');
  t.notOk(
    server.alerts().some((a) => a.id.startsWith('TND-GD')),
    'no guard alert',
  );
});
