import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import * as zmq from 'zeromq';
import { encodeLiveness } from '@tandem/protocol';
import {
  DAEMONS,
  Ledger,
  callOnce,
  isGroupAlive,
  liveGroups,
  readAlerts,
  resolvePaths,
  signalGroup,
  sleep,
  tickIntervalMs,
  type CoreDaemon,
  type Paths,
} from '@tandem/core';

const GUARD_MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const FAKE_DAEMON = fileURLToPath(new URL('./fixtures/fake-daemon.mjs', import.meta.url));
const HEARTBEAT_TIMEOUT_MS = 2000;
const STALL_LIMIT_MS = 800;
/** The guard checks, and the (fake) daemons beat, this often. */
const TICK_MS = tickIntervalMs(STALL_LIMIT_MS);

interface Server {
  dir: string;
  paths: Paths;
  marker: string;
  env: NodeJS.ProcessEnv;
  guard?: ChildProcess;
}

async function until(what: string, ok: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function server(t: Test): Server {
  const dir = mkdtempSync('/tmp/tnd-ge.');
  const marker = join(dir, 'marker');
  writeFileSync(
    join(dir, 'cluster.yaml'),
    `cluster:
  name: demo
  heartbeat: { interval: 200ms, timeout: ${HEARTBEAT_TIMEOUT_MS}ms, port: 39412 }
  stallLimit: ${STALL_LIMIT_MS}ms
  emergency: { action: exec, command: 'echo "$TANDEM_EMERGENCY_REASON" >> ${marker}' }
servers: [ { name: node1, interconnects: [127.0.0.1] } ]
`,
  );
  const env = {
    ...process.env,
    TANDEM_HOME: dir,
    TANDEM_CONFIG: join(dir, 'cluster.yaml'),
    TANDEM_NODE: 'node1',
    TANDEM_OS_ACTIONS: 'dry-run',
  };
  const s: Server = { dir, paths: resolvePaths(env), marker, env };
  t.teardown(() => {
    s.guard?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  return s;
}

async function startGuard(s: Server): Promise<void> {
  s.guard = spawn(process.execPath, [GUARD_MAIN], { env: s.env, stdio: 'ignore' });
  const end = Date.now() + 10_000;
  for (;;) {
    try {
      await callOnce(s.paths.rpc('guard'), { ping: {} }, { timeoutMs: 500 });
      return;
    } catch (err) {
      if (Date.now() > end || s.guard.exitCode !== null) throw err;
      await sleep(20);
    }
  }
}

const guardLog = (s: Server): string => {
  try {
    return readFileSync(join(s.paths.logs, 'guard.log'), 'utf8');
  } catch {
    return '';
  }
};
// The shell creates the file before echo writes the line: an empty file is no emergency yet.
const markerLines = (s: Server): string[] =>
  existsSync(s.marker) ? readFileSync(s.marker, 'utf8').trim().split('\n').filter(Boolean) : [];
const exited = (c: ChildProcess): boolean => c.exitCode !== null || c.signalCode !== null;

/** Starts a fake core daemon and waits until the guard has heard its hello. */
async function startFake(t: Test, s: Server, daemon: CoreDaemon): Promise<ChildProcess> {
  const fake = spawn(process.execPath, [FAKE_DAEMON, daemon, s.paths.guardLive(daemon), s.paths.registry, String(STALL_LIMIT_MS)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => void fake.kill('SIGKILL'));
  await until(`the guard to hear ${daemon} (pid ${fake.pid})`, () => guardLog(s).includes(`"pid":${fake.pid}`));
  return fake;
}

/** A detached process group, recorded in the ledger as rc does before it runs anything. */
function recordGroup(t: Test, s: Server, resource: string): number {
  const child = spawn('/bin/sh', ['-c', 'sleep 100 & sleep 100'], { cwd: s.dir, detached: true, stdio: 'ignore' });
  const pgid = child.pid as number;
  t.teardown(() => void signalGroup(pgid, 'SIGKILL'));
  new Ledger(s.paths.ledger).record({ kind: 'process-group', pgid, group: 'web', resource, owner: 'rc' });
  return pgid;
}

t.test(
  'a SIGKILLed core daemon gets its groups killed within the deadline, the emergency command run, and the other daemons fenced',
  async (t) => {
    const s = server(t);
    await startGuard(s);
    const latencies: number[] = [];
    for (let round = 1; round <= 3; round++) {
      const nm = await startFake(t, s, 'nm');
      const rc = await startFake(t, s, 'rc'); // a fresh hello re-arms a fenced guard
      const pgids = [recordGroup(t, s, `app${round}a`), recordGroup(t, s, `app${round}b`)];
      await until('the groups to run', () => pgids.every(isGroupAlive));

      const killedAt = performance.now();
      const killedAtMs = Date.now();
      rc.kill('SIGKILL');
      while (liveGroups(pgids).size > 0) {
        if (performance.now() - killedAt > 10_000) throw new Error('the groups outlived the emergency');
        await sleep(1);
      }
      const latencyMs = performance.now() - killedAt;
      latencies.push(latencyMs);

      // The safety bound only: the peers take over after the heartbeat timeout, so the groups must be
      // gone before it. How fast is measured in bench/; the figure is printed below.
      t.ok(latencyMs < HEARTBEAT_TIMEOUT_MS, `round ${round}: the groups were gone before the heartbeat timeout`);
      await until('the emergency command', () => markerLines(s).length === round);
      t.match(markerLines(s)[round - 1], new RegExp(`^tandem-rc exited unexpectedly \\(pid ${rc.pid}\\)$`));
      await until('nm to be fenced', () => exited(nm));
      t.equal(nm.exitCode, 0, 'the surviving daemon was told it is fenced and left');
      t.same(new Ledger(s.paths.ledger).list(), [], 'the ledger is cleared');
      await until(
        'the registry to be emptied',
        () => !existsSync(join(s.paths.registry, 'nm.json')) && !existsSync(join(s.paths.registry, 'rc.json')),
      );
      await until('the procedure to finish', () => readAlerts(s.paths.alerts).filter((a) => a.id === 'TND-GD-0904').length === round);
      const exitAlert = readAlerts(s.paths.alerts)
        .filter((a) => a.id === 'TND-GD-0901')
        .at(-1);
      const procedure = readAlerts(s.paths.alerts)
        .filter((a) => a.id === 'TND-GD-0903')
        .at(-1);
      t.comment(
        `round ${round}: SIGKILL → groups gone ${latencyMs.toFixed(1)} ms (guard: first SIGKILL → groups gone ${procedure?.details['elapsedMs']} ms); SIGKILL → TND-GD-0901 written ${(exitAlert?.timeMs ?? 0) - killedAtMs} ms`,
      );
    }
    t.comment(`fence latency over ${latencies.length} rounds: ${latencies.map((l) => l.toFixed(1)).join(', ')} ms`);
    const alerts = readAlerts(s.paths.alerts);
    t.match(alerts.find((a) => a.id === 'TND-GD-0903')?.details, {
      released: /web\/app1a \(pgid \d+\), web\/app1b \(pgid \d+\)/,
      stuck: 'nothing',
    });
    t.match(alerts.find((a) => a.id === 'TND-GD-0904')?.details['fence'], /told to exit: tandem-nm/);
  },
);

t.test('a daemon that says goodbye before it exits is not a crash', async (t) => {
  const s = server(t);
  await startGuard(s);
  const rc = await startFake(t, s, 'rc');
  rc.kill('SIGTERM');
  await until('rc to leave', () => exited(rc));
  t.equal(rc.exitCode, 0);
  await until('the guard to note the goodbye', () => guardLog(s).includes('tandem-rc said goodbye'));
  // Were rc's exit taken for a crash, the guard would be fenced and hb's death would be the
  // second emergency line, or no line at all.
  const hb = await startFake(t, s, 'hb');
  hb.kill('SIGKILL');
  await until('the emergency command', () => markerLines(s).length >= 1);
  await until('the procedure to finish', () => readAlerts(s.paths.alerts).some((a) => a.id === 'TND-GD-0904'));
  t.same(markerLines(s), [`tandem-hb exited unexpectedly (pid ${hb.pid})`]);
});

t.test('a second instance of a running daemon is a fault: the first stays watched, and its death is judged', async (t) => {
  const s = server(t);
  await startGuard(s);
  const first = await startFake(t, s, 'rc');
  const second = await startFake(t, s, 'rc');
  t.match(guardLog(s), /a second tandem-rc said hello while the first still runs/, 'the second hello is logged as a fault');
  first.kill('SIGKILL');
  await until('the emergency command', () => markerLines(s).length === 1);
  t.equal(markerLines(s)[0], `tandem-rc exited unexpectedly (pid ${first.pid})`, "the first instance's death was judged");
  await until('the second instance to be fenced', () => exited(second));
  await until('the procedure to finish', () => readAlerts(s.paths.alerts).some((a) => a.id === 'TND-GD-0904'));
  t.match(readAlerts(s.paths.alerts).find((a) => a.id === 'TND-GD-0904')?.details['fence'], /told to exit: tandem-rc/);
});

t.test('the second instance is watched once the first has left as planned', async (t) => {
  const s = server(t);
  await startGuard(s);
  const first = await startFake(t, s, 'rc');
  const second = await startFake(t, s, 'rc');
  first.kill('SIGTERM');
  await until('the first to leave', () => exited(first));
  const watched = (line: string): boolean => line.includes('"message":"tandem-rc said hello"') && line.includes(`"pid":${second.pid}`);
  await until('the second to be watched', () => guardLog(s).split('\n').some(watched));
  second.kill('SIGSTOP');
  t.teardown(() => void second.kill('SIGKILL'));
  await until('the emergency command', () => markerLines(s).length === 1);
  t.match(markerLines(s)[0], new RegExp(`^tandem-rc stalled for \\d+ ms \\(limit ${STALL_LIMIT_MS} ms, pid ${second.pid}\\)$`));
});

t.test('a daemon that stops beating is declared stalled and killed', async (t) => {
  const s = server(t);
  await startGuard(s);
  const md = await startFake(t, s, 'md');
  const pgid = recordGroup(t, s, 'app');
  md.kill('SIGSTOP');
  const stoppedAt = Date.now();
  await until('the emergency command', () => markerLines(s).length === 1);
  const waitedMs = Date.now() - stoppedAt;
  t.match(markerLines(s)[0], new RegExp(`^tandem-md stalled for \\d+ ms \\(limit ${STALL_LIMIT_MS} ms, pid ${md.pid}\\)$`));
  // The guard counts from when the next beat was due: the last beat it heard (up to a beat period
  // before the SIGSTOP) and a beat period, so the daemon had been stopped for the limit (a tick
  // allowed for the beats' own timer jitter).
  t.ok(
    waitedMs >= STALL_LIMIT_MS - TICK_MS,
    `declared after ${waitedMs} ms, not before the stall limit counted from the beat that was due`,
  );
  t.equal(isGroupAlive(pgid), false, 'its groups were killed');
  await until('the stalled daemon to be killed', () => exited(md));
  t.equal(md.signalCode, 'SIGKILL', 'a frozen daemon cannot hear the fence: it is killed');
  t.ok(readAlerts(s.paths.alerts).some((a) => a.id === 'TND-GD-0902'));
});

t.test('a daemon that died while the guard was away is found when the guard starts', async (t) => {
  const s = server(t);
  const gone = spawn('/bin/true');
  await new Promise((r) => gone.on('exit', r));
  const alive = spawn('/bin/sleep', ['100']);
  t.teardown(() => void alive.kill('SIGKILL'));
  mkdirSync(s.paths.registry, { recursive: true });
  writeFileSync(join(s.paths.registry, 'rm.json'), JSON.stringify({ daemon: 'rm', pid: gone.pid, startedMs: 1 }));
  writeFileSync(join(s.paths.registry, 'nm.json'), JSON.stringify({ daemon: 'nm', pid: alive.pid, startedMs: 1 }));
  const pgid = recordGroup(t, s, 'app');
  await startGuard(s);
  await until('the emergency command', () => markerLines(s).length === 1);
  t.equal(markerLines(s)[0], `tandem-rm (pid ${gone.pid}) exited while the guard was away`);
  t.equal(isGroupAlive(pgid), false);
  await until('the re-adopted survivor to be killed', () => exited(alive));
  t.equal(alive.signalCode, 'SIGKILL');
  t.same(
    DAEMONS.filter((d) => existsSync(join(s.paths.registry, `${d}.json`))),
    [],
    'the stale registrations are removed',
  );
});

t.test('garbage on the guard sockets is dropped and the guard keeps working', async (t) => {
  const s = server(t);
  await startGuard(s);
  const rc = await startFake(t, s, 'rc');
  const garbage = (dealer: zmq.Dealer): Promise<void>[] => [
    ...Array.from({ length: 50 }, (_, i) => dealer.send(randomBytes(1 + (i % 40)))),
    dealer.send([Buffer.alloc(0), randomBytes(8), randomBytes(3)]),
    dealer.send(Buffer.alloc(0)),
    dealer.send(encodeLiveness({ daemon: 'md', pid: 1, sentAtMs: 0, stallLimitMs: 1, beat: {} })),
  ];
  const dealers: zmq.Dealer[] = [];
  const connect = (endpoint: string): zmq.Dealer => {
    // linger: what was queued is delivered even though the socket is closed right after
    const dealer = new zmq.Dealer({ linger: 2000 });
    dealer.connect(endpoint);
    dealers.push(dealer);
    return dealer;
  };
  t.teardown(() => dealers.forEach((d) => d.close()));

  // On rc's channel first, lies in well-formed frames: a goodbye for a pid that is not rc's,
  // a message without a kind for rc's pid; then garbage. The first bad frame is logged, and
  // frames of one connection are handled in order, so the log line means the lies were seen.
  const liar = connect(s.paths.guardLive('rc'));
  await liar.send(encodeLiveness({ daemon: 'rc', pid: 999_999, sentAtMs: 0, stallLimitMs: 1, goodbye: { reason: 'not mine' } }));
  await liar.send(encodeLiveness({ daemon: 'rc', pid: rc.pid as number, sentAtMs: 0, stallLimitMs: 1 }));
  await Promise.all(garbage(liar));
  await until('the guard to log a bad frame on the channel of rc', () =>
    guardLog(s).includes('bad liveness frame on the channel of tandem-rc'),
  );
  for (const endpoint of [...DAEMONS.map((d) => s.paths.guardLive(d)), s.paths.rpc('guard')]) await Promise.all(garbage(connect(endpoint)));
  const pong = await callOnce(s.paths.rpc('guard'), { ping: {} }, { timeoutMs: 2000 });
  t.equal(pong.daemon?.name, 'guard', 'the guard still answers');
  t.equal(s.guard?.exitCode, null, 'the guard is still running');
  t.same(markerLines(s), [], 'no emergency came of it');
  rc.kill('SIGKILL');
  await until('the emergency command', () => markerLines(s).length === 1);
  t.equal(markerLines(s)[0], `tandem-rc exited unexpectedly (pid ${rc.pid})`, 'a forged goodbye did not disarm the guard');
});

t.test('the guard runs the emergency procedure on request and refuses other requests', async (t) => {
  const s = server(t);
  await startGuard(s);
  await t.rejects(callOnce(s.paths.rpc('guard'), { status: {} }, { timeoutMs: 2000 }), { code: 'BAD_REQUEST' });
  await t.rejects(callOnce(s.paths.rpc('guard'), { finalAction: { action: 'stop-group', group: 'web' } }, { timeoutMs: 2000 }), {
    code: 'BAD_REQUEST',
  });
  const pgid = recordGroup(t, s, 'app');
  const reply = await callOnce(
    s.paths.rpc('guard'),
    { finalAction: { action: 'emergency', reason: 'monitor app-alive: final action emergency' } },
    { timeoutMs: 2000 },
  );
  t.equal(reply.ack?.message, 'emergency procedure started: monitor app-alive: final action emergency');
  await until('the group to be gone', () => !isGroupAlive(pgid), 2000);
  await until('the emergency command', () => markerLines(s).length === 1);
  t.equal(markerLines(s)[0], 'monitor app-alive: final action emergency');
});

t.test('a guard frozen with the rest of the server fences it on waking instead of exiting', async (t) => {
  const s = server(t);
  await startGuard(s);
  const rc = await startFake(t, s, 'rc');
  const pgid = recordGroup(t, s, 'app');
  // The whole server frozen: the guard and the daemon it watches.
  s.guard!.kill('SIGSTOP');
  rc.kill('SIGSTOP');
  await sleep(STALL_LIMIT_MS + 4 * TICK_MS);
  rc.kill('SIGCONT');
  s.guard!.kill('SIGCONT');
  await until('the emergency command', () => markerLines(s).length === 1);
  t.match(markerLines(s)[0], /^tandem-guard event loop stalled for \d+ ms: this server was frozen$/);
  t.equal(isGroupAlive(pgid), false, 'the groups were killed');
  t.ok(
    readAlerts(s.paths.alerts).some((a) => a.id === 'TND-CORE-0950' && a.daemon === 'guard'),
    'the stall is an alert',
  );
  t.equal(s.guard!.exitCode, null, 'the guard is still running');
});
