// The emergency procedure (DESIGN.md 6.7) under a real pm2: a kill -9 of each core daemon in
// turn, and a SIGSTOP longer than the stall limit, fence the server: the group's processes are
// gone, the alert is written and the configured exec action ran.
import { readFileSync, rmSync } from 'node:fs';
import t from 'tap';
import { DAEMONS, PM2_NAMES, isAlive, isGroupAlive } from '@tandem/core';
import { TestServer } from '../helpers/server.mjs';

const server = new TestServer();
t.teardown(() => server.destroy());

async function fresh(): Promise<number> {
  server.pm2(['delete', 'all']);
  rmSync(server.marker, { force: true });
  await server.start();
  await server.waitFor('the application to run', async () => (await server.appPid()) > 0);
  return server.appPid();
}

for (const daemon of DAEMONS) {
  t.test(`kill -9 of ${PM2_NAMES[daemon]} runs the emergency procedure`, async (t) => {
    const app = await fresh();
    const alertsBefore = server.alerts().length;
    process.kill(server.daemonPid(daemon), 'SIGKILL');
    await server.waitFor('the emergency action', () => server.emergencyRan(), 10_000);
    t.notOk(isGroupAlive(app), "the group's process group is gone");
    t.notOk(isAlive(app));
    const alerts = server.alerts().slice(alertsBefore);
    t.ok(
      alerts.some((a) => a.id === 'TND-GD-0901' && a.message.includes(PM2_NAMES[daemon])),
      'the alert names the daemon that died',
    );
    t.ok(
      alerts.some((a) => a.id === 'TND-GD-0903'),
      'the emergency procedure is in the alert log',
    );
    for (const other of DAEMONS) {
      await server.waitFor(`${other} to be fenced`, () => {
        try {
          return !isAlive(server.daemonPid(other));
        } catch {
          return true; // registry file removed: the daemon is gone
        }
      });
    }
  });
}

t.test('a SIGSTOP of a core daemon longer than its stall limit runs the emergency procedure', async (t) => {
  const app = await fresh();
  const rm = server.daemonPid('rm');
  process.kill(rm, 'SIGSTOP');
  t.teardown(() => {
    if (isAlive(rm)) process.kill(rm, 'SIGCONT');
  });
  await server.waitFor('the emergency action', () => server.emergencyRan(), 10_000);
  t.notOk(isGroupAlive(app), "the group's process group is gone");
  t.ok(
    server.alerts().some((a) => a.id === 'TND-GD-0902' && a.message.includes('tandem-rm')),
    'the stall alert names the daemon',
  );
});

t.test('a planned stop of one core daemon is not an emergency', async (t) => {
  await fresh();
  const r = server.pm2(['stop', 'tandem-md']);
  t.equal(r.code, 0, r.stderr);
  // Had the guard taken the planned stop for a crash, it would have fenced the server naming
  // tandem-md. Kill another daemon: the one emergency that follows must name that one.
  process.kill(server.daemonPid('hb'), 'SIGKILL');
  await server.waitFor('the emergency action', () => server.emergencyRan(), 10_000);
  const reasons = readFileSync(server.marker, 'utf8');
  t.match(reasons, /tandem-hb/);
  t.notMatch(reasons, /tandem-md/, 'the planned stop was not taken for a crash');
});
