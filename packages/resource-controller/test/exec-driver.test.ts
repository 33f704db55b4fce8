import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { isAlive, isGroupAlive, Ledger, signalGroup, sleep, type ExecResourceConfig } from '@tandem/core';
import { ExecDriver, execStopBudgetMs, rcStopTimeoutMs, STOP_MARGIN_MS } from '@tandem/resource-controller';

function resource(dir: string, over: Partial<ExecResourceConfig>): ExecResourceConfig {
  return {
    name: 'app',
    type: 'exec',
    group: 'web',
    start: 'true',
    mode: 'sync',
    dependsOn: [],
    timeoutMs: 10_000,
    stopTimeoutMs: 5_000,
    cwd: dir,
    env: {},
    onStartFailure: { retries: 0, failovers: 0, finalAction: 'hold' },
    onStopFailure: { retries: 0, finalAction: 'hold' },
    ...over,
  };
}

/** Polls a condition with a bounded deadline. */
async function waitFor(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const readPid = (file: string): number => Number(readFileSync(file, 'utf8').trim());

interface Fixture {
  teardown(fn: () => unknown): void;
}

function setup(t: Fixture, over: Partial<ExecResourceConfig>) {
  // A temp dir of our own, removed after the teardown stopped what runs in it.
  const dir = mkdtempSync(join(tmpdir(), 'tnd-rc-'));
  const ledger = new Ledger(join(dir, 'ledger'));
  const logFile = join(dir, 'logs', 'web.app.log');
  const driver = new ExecDriver(resource(dir, over), { ledger, logFile });
  // Whatever a failing test leaves running is killed with the driver's own stop.
  t.teardown(async () => {
    await driver.stop({}).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, ledger, logFile, driver };
}

t.test('a sync start script that exits 0 succeeds and its output goes to the resource log', async (t) => {
  const { driver, logFile, ledger } = setup(t, {
    start: 'echo "hello from $TANDEM_EVENT $GREETING"; echo oops >&2',
    env: { GREETING: 'hi' },
  });
  await driver.start({ TANDEM_EVENT: 'START' });
  const log = readFileSync(logFile, 'utf8');
  t.match(log, /hello from START hi/);
  t.match(log, /oops/);
  t.same(ledger.list(), [], 'nothing left in the ledger');
  t.same(driver.status(), { pid: 0, alive: false, detail: '' });
});

t.test('a sync start script that exits non-zero fails with its exit code', async (t) => {
  const { driver } = setup(t, { start: 'exit 3' });
  await t.rejects(driver.start({}), /start script exited with code 3/);
});

t.test('the ledger holds a running script and is cleared after it ends', async (t) => {
  const { dir, driver, ledger } = setup(t, { start: 'echo $$ > sh.pid; while [ ! -f go ]; do sleep 0.02; done' });
  const started = driver.start({});
  // The shell creates the file before it writes the pid: wait for the pid itself.
  await waitFor('the script to write its pid', () => existsSync(join(dir, 'sh.pid')) && readPid(join(dir, 'sh.pid')) > 0);
  const pid = readPid(join(dir, 'sh.pid'));
  t.same(ledger.list(), [{ kind: 'process-group', pgid: pid, group: 'web', resource: 'app', owner: 'rc' }], 'recorded while it runs');
  writeFileSync(join(dir, 'go'), '');
  await started;
  t.same(ledger.list(), [], 'cleared after the group is gone');
});

t.test('a start timeout kills the whole process group', async (t) => {
  const { dir, driver, ledger } = setup(t, { start: 'sleep 30 & echo $! > child.pid; echo $$ > sh.pid; sleep 30', timeoutMs: 500 });
  await t.rejects(driver.start({}), /start script timed out after 500 ms: process group \d+ killed/);
  const child = readPid(join(dir, 'child.pid'));
  const sh = readPid(join(dir, 'sh.pid'));
  t.notOk(isAlive(sh), 'the script is gone');
  t.notOk(isAlive(child), 'its background child is gone');
  t.same(ledger.list(), []);
});

t.test('an async start runs the process until stop, with a stop script that sees the stop environment', async (t) => {
  const { dir, driver, ledger } = setup(t, {
    mode: 'async',
    start: 'exec sleep 30',
    stop: 'echo "$TANDEM_FACTOR $TANDEM_EVENT" > stop.out',
  });
  await driver.start({ TANDEM_EVENT: 'START' });
  const { pid, alive } = driver.status();
  t.ok(pid > 0, 'reports the pid');
  t.ok(alive, 'the process is alive');
  t.same(ledger.list(), [{ kind: 'process-group', pgid: pid, group: 'web', resource: 'app', owner: 'rc' }]);
  await driver.stop({ TANDEM_FACTOR: 'GROUPSTOP', TANDEM_EVENT: 'START' });
  t.notOk(isAlive(pid), 'the process is gone');
  t.equal(readFileSync(join(dir, 'stop.out'), 'utf8').trim(), 'GROUPSTOP START');
  t.same(ledger.list(), []);
});

t.test('an async process that ignores SIGTERM is killed after stopTimeout', async (t) => {
  const { driver, ledger } = setup(t, { mode: 'async', start: "trap '' TERM; while true; do sleep 0.05; done", stopTimeoutMs: 300 });
  await driver.start({});
  const { pid } = driver.status();
  await driver.stop({});
  t.notOk(isGroupAlive(pid), 'the whole process group is gone');
  t.same(ledger.list(), []);
});

t.test('an async process that dies is not restarted and its status says how it ended', async (t) => {
  const { dir, driver, ledger } = setup(t, { mode: 'async', start: 'while [ ! -f go ]; do sleep 0.02; done; exit 4' });
  await driver.start({});
  t.ok(driver.status().alive);
  writeFileSync(join(dir, 'go'), '');
  await waitFor('the process to exit', () => driver.status().detail !== '');
  t.same(driver.status(), { pid: 0, alive: false, detail: 'process exited with code 4' }, 'a finished run reports no pid');
  await waitFor('the ledger entry to clear', () => ledger.list().length === 0);
  await driver.stop({});
});

/**
 * Makes a new process group leader with the given pid, as a wrapped pid counter would: sets the
 * kernel's last pid (root only) and spawns; another process may take the pid first, so it retries.
 */
async function impostorWithPid(pid: number): Promise<number | undefined> {
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      writeFileSync('/proc/sys/kernel/ns_last_pid', String(pid - 1));
    } catch {
      return undefined;
    }
    const child = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
    child.unref();
    if (child.pid === pid) return pid;
    if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
    await sleep(10);
  }
  return undefined;
}

t.test('a finished async run is never mistaken for a process that reuses its pid', async (t) => {
  const { dir, driver, ledger } = setup(t, { mode: 'async', start: 'while [ ! -f go ]; do sleep 0.02; done; exit 4' });
  await driver.start({});
  const { pid } = driver.status();
  writeFileSync(join(dir, 'go'), '');
  await waitFor('the process to exit', () => driver.status().detail !== '' && !isGroupAlive(pid));
  await waitFor('the ledger entry to clear', () => ledger.list().length === 0);
  const impostor = await impostorWithPid(pid);
  if (impostor === undefined) return t.skip('cannot make a process with a given pid here (needs root and /proc/sys/kernel/ns_last_pid)');
  t.teardown(() => void signalGroup(impostor, 'SIGKILL'));
  t.ok(isGroupAlive(pid), 'another process group now has the old pgid');
  t.same(driver.status(), { pid: 0, alive: false, detail: 'process exited with code 4' }, 'status does not report the impostor');
  await driver.stop({});
  t.ok(isAlive(impostor), 'stop did not signal the impostor');
  await driver.start({});
  t.not(driver.status().pid, pid, 'start runs again');
  await driver.stop({});
  t.ok(isAlive(impostor), 'the impostor is still untouched');
});

t.test('the stop budget covers the stop script, the termination and every attempt', async (t) => {
  const base = resource('/tmp', { stopTimeoutMs: 1000 });
  t.equal(execStopBudgetMs(base), 1000 + 5000, 'no stop script: SIGTERM wait + SIGKILL wait');
  t.equal(execStopBudgetMs({ ...base, stop: 'true' }), 1000 + 10_000 + 1000 + 5000, 'with a stop script');
  t.equal(execStopBudgetMs({ ...base, stop: 'true', onStopFailure: { retries: 2, finalAction: 'hold' } }), 3 * 17_000, 'three attempts');
  const group = (name: string, resources: ExecResourceConfig[]) => ({
    name,
    servers: ['node1'],
    autoStart: true,
    autoFailback: false,
    exclusive: false,
    resources,
  });
  t.equal(rcStopTimeoutMs({ groups: [] }), STOP_MARGIN_MS, 'nothing to stop: the margin');
  t.equal(
    rcStopTimeoutMs({ groups: [group('web', [base, { ...base, stop: 'true' }]), group('db', [base])] }),
    6000 + 17_000 + 6000 + STOP_MARGIN_MS,
    'the sum over every resource, plus the margin',
  );
});

t.test('a sync start that leaves a daemon behind holds it until stop', async (t) => {
  const { dir, driver, ledger } = setup(t, { start: 'sleep 30 & echo $! > bg.pid' });
  await driver.start({});
  const bg = readPid(join(dir, 'bg.pid'));
  t.ok(isAlive(bg), 'the daemon runs');
  t.equal(ledger.list().length, 1, 'its process group stays in the ledger');
  await driver.stop({});
  t.notOk(isAlive(bg), 'stop ended it');
  t.same(ledger.list(), []);
});

t.test('a failing stop script fails the stop', async (t) => {
  const { driver } = setup(t, { stop: 'echo cannot; exit 2' });
  await driver.start({});
  await t.rejects(driver.stop({}), /stop script exited with code 2/);
});
