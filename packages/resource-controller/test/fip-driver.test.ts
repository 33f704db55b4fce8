// The fip driver against real interfaces. Root only: each test builds network namespaces of its
// own (veth pairs: this kernel may have no dummy driver) and runs the driver inside them, since
// the driver acts on the network namespace it runs in.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { readLedger, type FipResourceConfig } from '@tandem/core';
import { fipStopBudgetMs, rcStopTimeoutMs, STOP_MARGIN_MS } from '@tandem/resource-controller';

const ROOT = join(import.meta.dirname, '..', '..', '..');

function resource(over: Partial<FipResourceConfig> = {}): FipResourceConfig {
  return {
    name: 'vip',
    type: 'fip',
    group: 'web',
    address: '10.0.0.100/24',
    interface: 'v0',
    arpCount: 1,
    checkDuplicate: true,
    duplicateWaitMs: 300,
    dependsOn: [],
    timeoutMs: 10_000,
    stopTimeoutMs: 5_000,
    onStartFailure: { retries: 0, failovers: 0, finalAction: 'hold' },
    onStopFailure: { retries: 0, finalAction: 'hold' },
    ...over,
  };
}

t.test('a fip stop budget covers both commands of the removal, for every attempt', async (t) => {
  const r = resource({ stopTimeoutMs: 2000, onStopFailure: { retries: 2, finalAction: 'hold' } });
  t.equal(fipStopBudgetMs(r), 3 * (2 * 2000 + 1000));
  t.equal(rcStopTimeoutMs({ groups: [{ resources: [r] }] as never }), STOP_MARGIN_MS + fipStopBudgetMs(r));
});

interface StepResult {
  ok: boolean;
  error?: string;
  /** the driver's status after the step, from a fresh look at the interface */
  alive: boolean;
  detail: string;
  /** how long the step itself took */
  ms: number;
}

interface Fixture {
  teardown(fn: () => unknown): void;
}

let serial = 0;

/** A network namespace of the test's own, with lo up; removed at teardown, also after a failure. */
function namespace(t: Fixture): { name: string; run: (...argv: string[]) => string } {
  const name = `tnd-fip-${process.pid}-${serial++}`;
  execFileSync('ip', ['netns', 'add', name]);
  t.teardown(() => execFileSync('ip', ['netns', 'del', name]));
  const run = (...argv: string[]): string => execFileSync('ip', ['netns', 'exec', name, ...argv], { encoding: 'utf8' });
  run('ip', 'link', 'set', 'lo', 'up');
  return { name, run };
}

/**
 * Two namespaces joined by one link, both ends up: v0 in `a`, v1 in `b` (another host on the
 * link). Returns once the kernel says both ends are up (operstate UP): until then the link drops
 * what is sent on it, and a duplicate check's one probe would be lost, as on no real failover.
 */
function linkedPair(t: Fixture): { a: ReturnType<typeof namespace>; b: ReturnType<typeof namespace> } {
  const a = namespace(t);
  const b = namespace(t);
  a.run('ip', 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1', 'netns', b.name);
  a.run('ip', 'link', 'set', 'v0', 'up');
  b.run('ip', 'link', 'set', 'v1', 'up');
  const up = (): boolean =>
    a.run('ip', '-o', 'link', 'show', 'v0').includes('state UP') && b.run('ip', '-o', 'link', 'show', 'v1').includes('state UP');
  const deadline = Date.now() + 5000;
  while (!up()) {
    if (Date.now() > deadline) throw new Error('the veth pair did not come up within 5 s');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  }
  return { a, b };
}

/** A temp dir for the ledger and the resource log. */
function workDir(t: Fixture): string {
  const dir = mkdtempSync('/tmp/tnd-fip.');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Runs driver steps in a fresh node process inside the namespace (one driver for all the steps
 * of a call); after each step, the status from a fresh look at the interface.
 */
function drive(
  ns: string,
  dir: string,
  config: FipResourceConfig,
  steps: ('start' | 'stop' | 'status')[],
  env: Record<string, string> = {},
): StepResult[] {
  const script = `
    import { Ledger } from '@tandem/core';
    import { FipDriver } from '@tandem/resource-controller';
    const driver = new FipDriver(${JSON.stringify(config)}, { ledger: new Ledger(${JSON.stringify(join(dir, 'ledger'))}), logFile: ${JSON.stringify(join(dir, 'fip.log'))} });
    const results = [];
    for (const step of ${JSON.stringify(steps)}) {
      const result = { ok: true };
      const began = performance.now();
      try {
        if (step !== 'status') await driver[step](${JSON.stringify(env)});
      } catch (err) {
        Object.assign(result, { ok: false, error: err.message });
      }
      result.ms = Math.round(performance.now() - began);
      await driver.refresh();
      const { alive, detail } = driver.status();
      results.push({ ...result, alive, detail });
    }
    // The process exits once the background announcement has ended too: the log is complete then.
    console.log(JSON.stringify(results));
  `;
  const out = execFileSync('ip', ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', script], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  return JSON.parse(out.trim().split('\n').pop() ?? '[]') as StepResult[];
}

const addressesOn = (run: (...argv: string[]) => string, ifname: string): string[] =>
  [...run('ip', '-4', '-o', 'addr', 'show', 'dev', ifname).matchAll(/\binet (\S+)/g)].map((m) => m[1] ?? '');

if (process.getuid?.() !== 0) {
  t.skip('the fip driver tests need root (network namespaces, ip addr add)');
} else {
  t.test('start adds the address and records it in the ledger; stop removes it; both are idempotent', async (t) => {
    const { name, run } = namespace(t);
    run('ip', 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1');
    run('ip', 'link', 'set', 'v0', 'up');
    run('ip', 'link', 'set', 'v1', 'up');
    const dir = workDir(t);
    const config = resource();

    const [first, again] = drive(name, dir, config, ['start', 'start']);
    t.match(first, { ok: true, alive: true, detail: '10.0.0.100/24 on v0' }, 'online after the start');
    t.match(again, { ok: true, alive: true }, 'a second start of the same driver succeeds');
    t.same(addressesOn(run, 'v0'), ['10.0.0.100/24'], 'the address is on the interface once');
    t.same(
      readLedger(join(dir, 'ledger')),
      [{ kind: 'fip', address: '10.0.0.100/24', interface: 'v0', group: 'web', resource: 'vip', owner: 'rc' }],
      'the ledger holds the address for the guard',
    );
    const announced = readFileSync(join(dir, 'fip.log'), 'utf8');
    t.match(announced, /announce: arping -U -c 1 -I v0 10\.0\.0\.100\n/, 'the address was announced');
    t.notMatch(announced, /announce: arping: /, 'the announcement did not fail');

    const [restarted, status] = drive(name, dir, config, ['start', 'status']);
    t.match(restarted, { ok: true, alive: true }, 'a start by a new driver finds the address already there');
    t.match(status, { ok: true, alive: true, detail: '10.0.0.100/24 on v0' });
    t.same(addressesOn(run, 'v0'), ['10.0.0.100/24']);

    const [stopped, stoppedAgain] = drive(name, dir, config, ['stop', 'stop']);
    t.match(stopped, { ok: true, alive: false, detail: '10.0.0.100/24 not on v0' }, 'offline after the stop');
    t.match(stoppedAgain, { ok: true, alive: false }, 'stopping an absent address succeeds');
    t.same(addressesOn(run, 'v0'), [], 'the address is gone from the interface');
    t.same(readLedger(join(dir, 'ledger')), [], 'the ledger entry is cleared');

    const log = readFileSync(join(dir, 'fip.log'), 'utf8');
    t.match(log, /start: arping -D -c 1 -w 2 -I v0 10\.0\.0\.100/, 'the duplicate check is in the resource log');
    t.match(log, /start: ip -4 addr add 10\.0\.0\.100\/24 dev v0/);
    t.match(log, /stop: removed 10\.0\.0\.100\/24 from v0/);
  });

  t.test('status follows the interface when somebody else removes the address', async (t) => {
    const { name, run } = namespace(t);
    run('ip', 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1');
    run('ip', 'link', 'set', 'v0', 'up');
    const dir = workDir(t);
    run('ip', 'addr', 'add', '10.0.0.100/24', 'dev', 'v0');
    t.match(drive(name, dir, resource(), ['status']), [{ alive: true }]);
    run('ip', 'addr', 'del', '10.0.0.100/24', 'dev', 'v0');
    t.match(drive(name, dir, resource(), ['status']), [{ alive: false, detail: '10.0.0.100/24 not on v0' }]);
  });

  t.test('start refuses an address another host on the link already answers for', async (t) => {
    // One link between two namespaces; the peer holds the address.
    const { a, b } = linkedPair(t);
    b.run('ip', 'addr', 'add', '10.0.0.100/24', 'dev', 'v1');
    const dir = workDir(t);

    const [refused] = drive(a.name, dir, resource(), ['start']);
    t.match(refused, { ok: false, alive: false, error: '10.0.0.100 is already in use on the network (answered ARP)' });
    t.comment(`refused after ${refused?.ms} ms`);
    t.same(addressesOn(a.run, 'v0'), [], 'nothing was added');
    t.same(readLedger(join(dir, 'ledger')), [], 'nothing was recorded');

    // Each round needs room for a pause, the three checks that would prove a release, and the add.
    const [failover] = drive(a.name, dir, resource({ timeoutMs: 2500 }), ['start'], { TANDEM_EVENT: 'FAILOVER' });
    t.match(
      failover,
      { ok: false, error: '10.0.0.100 is already in use on the network (answered ARP)' },
      'a failover waits, then gives up at the timeout',
    );
    t.ok((failover?.ms ?? 0) >= 300, `the failover start waited ${failover?.ms} ms (at least one pause) for the address to be released`);
    t.same(addressesOn(a.run, 'v0'), [], 'nothing was added');

    // The check is what refused: without it the address is added.
    const [unchecked] = drive(a.name, dir, resource({ checkDuplicate: false, arpCount: 0 }), ['start']);
    t.match(unchecked, { ok: true, alive: true });
    t.same(addressesOn(a.run, 'v0'), ['10.0.0.100/24']);
  });

  t.test('a failover start waits while the server it fails over from still answers for the address', async (t) => {
    const { a, b } = linkedPair(t);
    b.run('ip', 'addr', 'add', '10.0.0.100/24', 'dev', 'v1');
    const dir = workDir(t);
    // The old holder (frozen, its kernel still answering ARP) releases the address once the start
    // has found it answered (at most 10 s on): the release comes after the first check, however
    // long the driver's process takes to get there.
    const log = join(dir, 'fip.log');
    const release = spawn(
      'sh',
      [
        '-c',
        `for i in $(seq 200); do grep -q "answered ARP" "${log}" 2>/dev/null && break; sleep 0.05; done; ip -n ${b.name} addr del 10.0.0.100/24 dev v1`,
      ],
      { stdio: 'ignore' },
    );
    t.teardown(() => {
      if (release.exitCode === null) release.kill();
    });
    const [started] = drive(a.name, dir, resource({ arpCount: 0 }), ['start'], { TANDEM_EVENT: 'FAILOVER' });
    t.match(started, { ok: true, alive: true });
    t.comment(`started ${started?.ms} ms after it began, once the address was free`);
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    t.match(lines.join('\n'), /answered ARP: waiting for the server it fails over from to release it/);
    // Released: three checks in a row went unanswered before the address was added, not one.
    const added = lines.findIndex((l) => l.includes('ip -4 addr add'));
    t.match(
      lines.slice(added - 6, added).join('\n'),
      /^(.*start: arping -D .*\n.*start: no answer for 10\.0\.0\.100 within \d+ ms.*(\n|$)){3}$/,
      'three checks in a row found the address free',
    );
    t.notMatch(lines[added - 7] ?? '', /no answer/, 'after an answered one');
    t.same(addressesOn(a.run, 'v0'), ['10.0.0.100/24']);
  });

  t.test('with nobody answering, start waits duplicateWait for an answer, then kills arping and adds the address', async (t) => {
    // The peer is up and answers ARP for its own address, but not for the floating one.
    const { a, b } = linkedPair(t);
    b.run('ip', 'addr', 'add', '10.0.0.1/24', 'dev', 'v1');
    const dir = workDir(t);

    const [started] = drive(a.name, dir, resource({ arpCount: 0, duplicateWaitMs: 300 }), ['start']);
    t.match(started, { ok: true, alive: true });
    t.comment(`free address started in ${started?.ms} ms (duplicateWait 300 ms)`);
    const log = readFileSync(join(dir, 'fip.log'), 'utf8');
    // arping -w 2 alone would probe for about a second: it was stopped at the end of the wait.
    t.match(log, /start: arping -D -c 1 -w 2 -I v0 10\.0\.0\.100\n/, 'arping may run a whole second past the wait');
    t.match(log, /start: no answer for 10\.0\.0\.100 within 300 ms: arping stopped\n/, 'the wait ended the check, not arping');
    t.same(execFileSync('ip', ['netns', 'pids', a.name], { encoding: 'utf8' }).trim(), '', 'no arping is left running in the namespace');
    t.same(addressesOn(a.run, 'v0'), ['10.0.0.100/24']);

    // A wait over a second gets a longer arping deadline.
    const [restarted] = drive(a.name, dir, resource({ address: '10.0.0.101/24', arpCount: 0, duplicateWaitMs: 1200 }), ['start']);
    t.match(restarted, { ok: true, alive: true });
    t.match(readFileSync(join(dir, 'fip.log'), 'utf8'), /start: arping -D -c 1 -w 3 -I v0 10\.0\.0\.101\n/);
  });

  t.test('a duplicate check that cannot run, or cannot end within the start timeout, fails the start', async (t) => {
    const { name, run } = namespace(t);
    run('ip', 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1');
    const dir = workDir(t);
    // v0 is down: arping exits 2 (and with -q says nothing).
    const [down] = drive(name, dir, resource(), ['start']);
    t.match(down, { ok: false, alive: false, error: /^cannot check whether 10\.0\.0\.100 is in use on v0: arping exited with code 2/ });

    run('ip', 'link', 'set', 'v0', 'up');
    run('ip', 'link', 'set', 'v1', 'up');
    const [late] = drive(name, dir, resource({ timeoutMs: 400, duplicateWaitMs: 5000 }), ['start']);
    t.match(late, {
      ok: false,
      alive: false,
      error: /^cannot check whether 10\.0\.0\.100 is in use on v0: arping timed out after \d+ ms$/,
    });
    t.same(addressesOn(run, 'v0'), [], 'nothing was added');
    t.same(readLedger(join(dir, 'ledger')), [], 'nothing was recorded');
  });

  t.test('start never takes over an address Tandem did not add, under any prefix', async (t) => {
    const { name, run } = namespace(t);
    run('ip', 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1');
    run('ip', 'link', 'set', 'v0', 'up');
    const dir = workDir(t);
    // A static address of the same IP under another prefix: the same IP all the same.
    run('ip', 'addr', 'add', '10.0.0.100/16', 'dev', 'v0');
    const [refused, stopped] = drive(name, dir, resource(), ['start', 'status']);
    t.match(refused, {
      ok: false,
      error: '10.0.0.100/24 is already on v0 but was not added by Tandem: remove it, or choose another address',
    });
    t.same(readLedger(join(dir, 'ledger')), [], 'nothing was recorded, so nothing will remove it');
    t.match(stopped, { alive: true }, 'the status sees the IP on the interface');
    t.same(addressesOn(run, 'v0'), ['10.0.0.100/16'], 'the static address is untouched and not doubled');
  });

  t.test('start fails with a clear reason on an interface that does not exist', async (t) => {
    const { name } = namespace(t);
    const dir = workDir(t);
    const [failed] = drive(name, dir, resource({ interface: 'nosuch0' }), ['start']);
    t.match(failed, { ok: false, alive: false, error: /cannot read the addresses of nosuch0: Device "nosuch0" does not exist/ });
    t.same(readLedger(join(dir, 'ledger')), []);
  });
}
