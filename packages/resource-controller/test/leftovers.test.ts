import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { AlertLog, createLogger, isGroupAlive, Ledger, readAlerts, signalGroup } from '@tandem/core';
import { killLeftovers } from '@tandem/resource-controller';

t.test('at start, rc kills the process groups a previous rc left in the ledger and clears their entries', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tnd-rc-'));
  const ledger = new Ledger(join(dir, 'ledger'));
  const alerts = new AlertLog(join(dir, 'alerts.log'), 'node1', 'rc');
  const log = createLogger({ daemon: 'rc', server: 'node1', logsDir: join(dir, 'logs'), console: false });
  const left = spawn('/bin/sh', ['-c', 'sleep 30 & sleep 30'], { detached: true, stdio: 'ignore' });
  left.unref();
  const pgid = left.pid!;
  const other = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
  other.unref();
  const otherPgid = other.pid!;
  t.teardown(() => {
    signalGroup(pgid, 'SIGKILL');
    signalGroup(otherPgid, 'SIGKILL');
    log.close();
    rmSync(dir, { recursive: true, force: true });
  });
  // A pgid above pid_max can name no group: an entry whose group is gone.
  const gone = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8')) + 1;
  const live = { kind: 'process-group', pgid, group: 'web', resource: 'app', owner: 'rc' } as const;
  const stale = { kind: 'process-group', pgid: gone, group: 'web', resource: 'db', owner: 'rc' } as const;
  const notOurs = { kind: 'process-group', pgid: otherPgid, group: 'web', resource: 'disk', owner: 'md' } as const;
  for (const e of [live, stale, notOurs]) ledger.record(e);

  const killed = await killLeftovers({ ledger, alerts, log });
  t.same(killed, [live], 'the live group was killed');
  t.notOk(isGroupAlive(pgid), 'none of its processes is left');
  t.ok(isGroupAlive(otherPgid), 'the group of another owner is untouched');
  t.same(ledger.list(), [notOurs], 'only the other owner keeps its entry');
  t.match(readAlerts(join(dir, 'alerts.log')), [
    {
      id: 'TND-RC-0104',
      message: `process group ${pgid} of resource web/app left over from a previous tandem-rc: killed`,
      details: { group: 'web', resource: 'app', pgid: String(pgid) },
    },
  ]);
  t.equal(readAlerts(join(dir, 'alerts.log')).length, 1, 'one alert: a gone group is cleared silently');
});
