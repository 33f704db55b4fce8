import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import {
  AlertLog,
  Ledger,
  createLogger,
  isGroupAlive,
  readAlerts,
  readLedger,
  resolvePaths,
  signalGroup,
  sleep,
  validateConfigText,
  type Config,
} from '@tandem/core';
import { runEmergency, type EmergencyContext } from '@tandem/guard';

function configFor(emergency: string, heartbeat = '{ interval: 100ms, timeout: 1s }'): Config {
  const v = validateConfigText(`
cluster: { name: demo, heartbeat: ${heartbeat}, emergency: ${emergency} }
servers: [ { name: node1 } ]
`);
  if (!v.ok) throw new Error(v.problems.join('\n'));
  return v.config;
}

function setup(t: Test, config: Config, env: NodeJS.ProcessEnv = process.env): EmergencyContext & { dir: string } {
  const dir = mkdtempSync('/tmp/tnd-gd.');
  const paths = resolvePaths({ TANDEM_HOME: dir });
  const log = createLogger({ daemon: 'guard', server: 'node1', logsDir: paths.logs, console: false });
  t.teardown(() => {
    log.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, config, server: 'node1', paths, alerts: new AlertLog(paths.alerts, 'node1', 'guard'), log, env };
}

/** A detached process group of two sleeping processes, as rc would start a resource. */
function spawnGroup(t: Test, cwd: string): number {
  const child = spawn('/bin/sh', ['-c', 'sleep 100 & sleep 100'], { cwd, detached: true, stdio: 'ignore' });
  const pgid = child.pid as number;
  t.teardown(() => void signalGroup(pgid, 'SIGKILL'));
  return pgid;
}

/** The pids of a process group's members that are not zombies. */
function membersOf(pgid: number): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc').filter((f) => /^\d+$/.test(f))) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[2]) === pgid && f[0] !== 'Z') out.push(Number(p));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** True if the process is gone, a zombie, or has SIGKILL (bit 9) pending. */
function killedOrGone(pid: number): boolean {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return true;
  }
  if (/^State:\s+[ZX]/m.test(status)) return true;
  const pending = [/^SigPnd:\s+([0-9a-f]+)/m, /^ShdPnd:\s+([0-9a-f]+)/m].map((re) => BigInt(`0x${re.exec(status)?.[1] ?? '0'}`));
  return pending.some((mask) => (mask & 0x100n) !== 0n);
}

async function until(what: string, ok: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

t.test('the emergency procedure kills every recorded process group, clears the ledger, alerts and runs the command', async (t) => {
  const marker = '$TANDEM_HOME_MARKER';
  const ctx = setup(t, configFor(`{ action: exec, command: 'echo "$TANDEM_SERVER_NAME $TANDEM_EMERGENCY_REASON" > "${marker}"' }`));
  const markerFile = join(ctx.dir, 'marker');
  ctx.env = { ...process.env, TANDEM_HOME_MARKER: markerFile };
  const ledger = new Ledger(ctx.paths.ledger);
  const pgids = [spawnGroup(t, ctx.dir), spawnGroup(t, ctx.dir)];
  pgids.forEach((pgid, i) => ledger.record({ kind: 'process-group', pgid, group: 'web', resource: `app${i}`, owner: 'rc' }));
  await until('both sleeps of each group', () => pgids.every((p) => membersOf(p).length >= 2));

  let fenced = false;
  const outcome = await runEmergency(ctx, { reason: 'tandem-rc exited unexpectedly (pid 1234)', alert: 'TND-GD-0901' }, async () => {
    fenced = true;
    return 'no daemons to fence';
  });

  t.same(
    pgids.map((p) => isGroupAlive(p)),
    [false, false],
    'no process of either group is left',
  );
  t.same(ledger.list(), [], 'the ledger is cleared');
  t.equal(outcome.release.released.length, 2);
  t.same(outcome.release.stuck, []);
  t.ok(fenced, 'the rest of Tandem was fenced');
  t.equal(readFileSync(markerFile, 'utf8'), 'node1 tandem-rc exited unexpectedly (pid 1234)\n', 'the command ran with the reason');
  const alerts = readAlerts(ctx.paths.alerts);
  t.same(
    alerts.map((a) => a.id),
    ['TND-GD-0901', 'TND-GD-0903', 'TND-GD-0904'],
  );
  t.match(alerts[1]?.message, /released 2 process group\(s\) in \d+ ms/);
  t.match(alerts[1]?.details['released'], /web\/app0 \(pgid \d+\), web\/app1 \(pgid \d+\)/);
  t.match(alerts[2]?.message, /emergency action exec: command .* exited with 0/);
  t.equal(alerts[2]?.details['fence'], 'no daemons to fence');
});

t.test('the kill is sent before the procedure first yields', async (t) => {
  const ctx = setup(t, configFor('{ action: stop-services }'));
  const pgid = spawnGroup(t, ctx.dir);
  new Ledger(ctx.paths.ledger).record({ kind: 'process-group', pgid, group: 'web', resource: 'app', owner: 'rc' });
  await until('both sleeps of the group', () => membersOf(pgid).length >= 2);
  const members = membersOf(pgid);
  const done = runEmergency(ctx, { reason: 'requested' }, async () => 'none');
  // No event-loop turn has passed: each member is already gone or has SIGKILL pending.
  t.same(
    members.filter((pid) => !killedOrGone(pid)),
    [],
  );
  await done;
  t.equal(isGroupAlive(pgid), false);
  t.same(
    readAlerts(ctx.paths.alerts).map((a) => a.id),
    ['TND-GD-0903', 'TND-GD-0904'],
    'a requested emergency has no exited/stalled alert',
  );
});

t.test('an empty or unreadable ledger releases nothing and the action still runs', async (t) => {
  const ctx = setup(t, configFor('{ action: stop-services }'));
  new Ledger(ctx.paths.ledger);
  writeFileSync(join(ctx.paths.ledger, 'pgid-9.json'), '{ half');
  writeFileSync(
    join(ctx.paths.ledger, 'pgid-1.json'),
    JSON.stringify({ kind: 'process-group', pgid: 1, group: 'x', resource: 'y', owner: 'rc' }),
  );
  const outcome = await runEmergency(ctx, { reason: 'requested' }, async () => 'none');
  t.same(outcome.release.released, []);
  t.equal(outcome.action, 'Tandem services stopped');
  t.ok(existsSync(join(ctx.paths.ledger, 'pgid-1.json')), 'an entry the guard refuses to act on (pgid 1) is left for an operator');
});

t.test('a reboot in dry-run says what it would do and escalates to reset after the heartbeat timeout', async (t) => {
  const ctx = setup(t, configFor('{ action: reboot, deadline: 100ms }', '{ interval: 100ms, timeout: 300ms }'), {
    TANDEM_OS_ACTIONS: 'dry-run',
  });
  const outcome = await runEmergency(ctx, { reason: 'tandem-hb stalled', alert: 'TND-GD-0902' }, async () => 'none');
  t.equal(outcome.action, 'dry-run: systemctl reboot; escalates to reset if this server is still up in 300 ms');
  await until('the escalation', () => readAlerts(ctx.paths.alerts).length === 4);
  const last = readAlerts(ctx.paths.alerts)[3];
  t.equal(last?.id, 'TND-GD-0904');
  t.equal(
    last?.message,
    'emergency action reboot did not complete within 300 ms: escalated to reset: dry-run: echo b > /proc/sysrq-trigger',
  );
});

t.test('a logger that throws keeps neither the action nor the fence from running', async (t) => {
  const ctx = setup(t, configFor('{ action: stop-services }'));
  const pgid = spawnGroup(t, ctx.dir);
  new Ledger(ctx.paths.ledger).record({ kind: 'process-group', pgid, group: 'web', resource: 'app', owner: 'rc' });
  await until('both sleeps of the group', () => membersOf(pgid).length >= 2);
  let logCalls = 0;
  const broken = new Proxy(ctx.log, {
    get: (target, prop, receiver) =>
      prop === 'error'
        ? () => {
            logCalls++;
            throw new Error('EROFS: read-only file system');
          }
        : Reflect.get(target, prop, receiver),
  });
  let fenced = false;
  const outcome = await runEmergency(
    { ...ctx, log: broken },
    { reason: 'tandem-rc exited unexpectedly', alert: 'TND-GD-0901' },
    async () => {
      fenced = true;
      return 'fenced';
    },
  );
  t.ok(logCalls > 0, 'the logger was called, and threw');
  t.equal(isGroupAlive(pgid), false, 'the group was killed');
  t.ok(fenced, 'the fence ran');
  t.equal(outcome.action, 'Tandem services stopped', 'the action ran');
  t.same(
    readAlerts(ctx.paths.alerts).map((a) => a.id),
    ['TND-GD-0901', 'TND-GD-0903', 'TND-GD-0904'],
    'the alerts were all written',
  );
});

t.test('a fence that fails is reported in the action alert, not thrown', async (t) => {
  const ctx = setup(t, configFor('{ action: stop-services }'));
  const outcome = await runEmergency(ctx, { reason: 'requested' }, async () => {
    throw new Error('socket closed');
  });
  t.equal(outcome.action, 'Tandem services stopped');
  t.equal(readAlerts(ctx.paths.alerts).at(-1)?.details['fence'], 'the fence failed: socket closed');
});

t.test('what a surviving daemon activates before its fence takes effect is released by a second sweep', async (t) => {
  const ctx = setup(t, configFor('{ action: stop-services }'));
  const ledger = new Ledger(ctx.paths.ledger);
  const early = spawnGroup(t, ctx.dir);
  ledger.record({ kind: 'process-group', pgid: early, group: 'web', resource: 'app', owner: 'rc' });
  let late = 0;
  const outcome = await runEmergency(ctx, { reason: 'tandem-nm exited unexpectedly' }, async () => {
    // While the fence is under way, rc (still alive) starts one more resource and records it.
    late = spawnGroup(t, ctx.dir);
    ledger.record({ kind: 'process-group', pgid: late, group: 'db', resource: 'worker', owner: 'rc' });
    return 'told to exit: tandem-rc';
  });
  t.ok(late > 0, 'the fence ran');
  t.same(outcome.release.released.map((e) => e.pgid).sort(), [early, late].sort(), 'both groups were released');
  t.notOk(isGroupAlive(early));
  t.notOk(isGroupAlive(late), 'the group started during the fence is gone too');
  t.same(readLedger(ctx.paths.ledger), [], 'the ledger is empty');
});
