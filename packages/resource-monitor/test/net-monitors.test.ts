// The fip, nic and ip monitors against real interfaces. The parsing is tested everywhere; the
// checks need root: they run inside a network namespace of the test's own, linked by a veth pair
// (this kernel may have no dummy driver) to a peer namespace, since a monitor looks at the
// namespace it runs in. No packet leaves the two namespaces.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import type { FipResourceConfig, MonitorConfig } from '@tandem/core';
import { createMonitor, parseLink, type CheckResult } from '@tandem/resource-monitor';

const ROOT = join(import.meta.dirname, '..', '..', '..');

t.test('a link is up when administratively up and operationally up, or UNKNOWN with carrier', async (t) => {
  const cases: [string, boolean][] = [
    ['3: v0@v1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT', true],
    ['2: d0: <BROADCAST,NOARP,UP,LOWER_UP> mtu 1500 qdisc noqueue state UNKNOWN mode DEFAULT', true],
    ['2: d0: <BROADCAST,NOARP,UP> mtu 1500 qdisc noqueue state UNKNOWN mode DEFAULT', false],
    ['3: v0@v1: <NO-CARRIER,BROADCAST,MULTICAST,UP,M-DOWN> mtu 1500 qdisc noqueue state LOWERLAYERDOWN', false],
    ['3: v0@v1: <BROADCAST,MULTICAST> mtu 1500 qdisc noop state DOWN mode DEFAULT', false],
    ['2: d0: <BROADCAST,NOARP,LOWER_UP> mtu 1500 state UNKNOWN', false],
    ['', false],
  ];
  for (const [line, up] of cases) t.equal(parseLink(line).up, up, line || '(no output)');
  t.match(parseLink(cases[3]![0]).what, /state LOWERLAYERDOWN <NO-CARRIER/, 'the reason names the state and flags');
});

function monitorConfig(over: Partial<MonitorConfig>): MonitorConfig {
  return {
    name: 'm',
    type: 'nic',
    intervalMs: 1000,
    timeoutMs: 2000,
    retries: 0,
    startDelayMs: 0,
    when: 'always',
    delayWarningPercent: 80,
    recovery: { target: 'web', kind: 'group', group: 'web', reactivations: 0, failovers: 0, finalAction: 'none' },
    ...over,
  };
}

const vip: FipResourceConfig = {
  name: 'vip',
  type: 'fip',
  group: 'web',
  address: '10.0.0.100/24',
  interface: 'n0',
  arpCount: 0,
  checkDuplicate: false,
  dependsOn: [],
  timeoutMs: 10_000,
  stopTimeoutMs: 5_000,
  onStartFailure: { retries: 0, failovers: 0, finalAction: 'hold' },
  onStopFailure: { retries: 0, finalAction: 'hold' },
};

t.test('a fip monitor without its target resource configuration fails and says why', async (t) => {
  const monitor = createMonitor(monitorConfig({ type: 'fip', target: 'vip' }), { resource: () => undefined });
  t.same(await monitor.check(AbortSignal.timeout(2000)), { ok: false, message: 'resource vip is not a floating IP known to this monitor' });
});

/**
 * Runs one check in a fresh node process inside the namespace, the fip resource `vip` known to
 * it; `abortAfterMs` aborts the check early. Answers the result and how long the check took.
 */
function checkIn(ns: string, config: MonitorConfig, abortAfterMs = config.timeoutMs): CheckResult & { elapsedMs: number } {
  const script = `
    import { createMonitor } from '@tandem/resource-monitor';
    const vip = ${JSON.stringify(vip)};
    const monitor = createMonitor(${JSON.stringify(config)}, { resource: () => undefined, resourceConfig: (name) => (name === 'vip' ? vip : undefined) });
    const started = performance.now();
    const result = await monitor.check(AbortSignal.timeout(${abortAfterMs}));
    console.log(JSON.stringify({ ...result, elapsedMs: performance.now() - started }));
  `;
  const out = execFileSync('ip', ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', script], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  return JSON.parse(out.trim().split('\n').pop() ?? '{}') as CheckResult & { elapsedMs: number };
}

if (process.getuid?.() !== 0) {
  t.skip('the fip, nic and ip monitor checks need root (network namespaces)');
} else {
  const ns = `tnd-fip-${process.pid}`;
  const peerNs = `tnd-fip-${process.pid}-peer`;
  const inNs =
    (name: string) =>
    (...argv: string[]): string =>
      execFileSync('ip', ['netns', 'exec', name, ...argv], { encoding: 'utf8' });
  const run = inNs(ns);
  const peer = inNs(peerNs);

  t.before(() => {
    execFileSync('ip', ['netns', 'add', ns]);
    execFileSync('ip', ['netns', 'add', peerNs]);
    run('ip', 'link', 'set', 'lo', 'up');
    run('ip', 'link', 'add', 'n0', 'type', 'veth', 'peer', 'name', 'n1', 'netns', peerNs);
  });
  t.teardown(() => {
    execFileSync('ip', ['netns', 'del', ns]);
    execFileSync('ip', ['netns', 'del', peerNs]);
  });
  /** Both ends up, n0 with 192.0.2.10 and the floating IP, n1 (the peer) with 192.0.2.20: the state every test starts from. */
  t.beforeEach(() => {
    for (const [on, ifname] of [
      [run, 'n0'],
      [peer, 'n1'],
    ] as const) {
      on('ip', 'link', 'set', ifname, 'up');
      on('ip', 'addr', 'flush', 'dev', ifname);
    }
    run('ip', 'addr', 'add', '192.0.2.10/24', 'dev', 'n0');
    peer('ip', 'addr', 'add', '192.0.2.20/24', 'dev', 'n1');
    run('ip', 'addr', 'add', vip.address, 'dev', 'n0');
  });

  const fip = monitorConfig({ type: 'fip', target: 'vip' });
  const nic = monitorConfig({ type: 'nic', interface: 'n0' });

  t.test('the fip monitor is healthy while the address is on its interface, and fails once it is removed', async (t) => {
    t.match(checkIn(ns, fip), { ok: true, message: '10.0.0.100/24 is on n0, link up' });
    run('ip', 'addr', 'del', vip.address, 'dev', 'n0');
    t.match(checkIn(ns, fip), { ok: false, message: '10.0.0.100/24 is not on n0' });
  });

  t.test('the fip monitor fails when the link of its interface goes down, though the address stays', async (t) => {
    run('ip', 'link', 'set', 'n0', 'down');
    t.match(run('ip', '-4', '-o', 'addr', 'show', 'dev', 'n0'), /10\.0\.0\.100\/24/, 'the address is still there');
    t.match(checkIn(ns, fip), { ok: false, message: /^10\.0\.0\.100\/24 is on n0 but link of n0 is down \(state DOWN/ });
  });

  t.test('the nic monitor fails when its link is set down, and when the other end of the cable is', async (t) => {
    t.match(checkIn(ns, nic), { ok: true, message: 'link of n0 is up' });
    peer('ip', 'link', 'set', 'n1', 'down');
    t.match(checkIn(ns, nic), { ok: false, message: /link of n0 is down \(state \S+ <NO-CARRIER,/ });
    peer('ip', 'link', 'set', 'n1', 'up');
    t.match(checkIn(ns, nic), { ok: true });
    run('ip', 'link', 'set', 'n0', 'down');
    t.match(checkIn(ns, nic), { ok: false, message: /link of n0 is down \(state DOWN/ });
  });

  t.test('the nic monitor fails on an interface that does not exist', async (t) => {
    t.match(checkIn(ns, monitorConfig({ type: 'nic', interface: 'nosuch0' })), {
      ok: false,
      message: /cannot read the link of nosuch0: Device "nosuch0" does not exist/,
    });
  });

  t.test('the ip monitor is healthy when any address answers and fails when none does', async (t) => {
    const ping = (addresses: string[]): MonitorConfig => monitorConfig({ type: 'ip', addresses, timeoutMs: 1000 });
    t.match(checkIn(ns, ping(['192.0.2.20'])), { ok: true, message: '192.0.2.20 answers' });
    t.match(checkIn(ns, ping(['192.0.2.1', '192.0.2.20'])), { ok: true, message: '192.0.2.20 answers' }, 'one answer is enough');
    t.match(checkIn(ns, ping(['192.0.2.1'])), { ok: false, message: 'no address answers: 192.0.2.1 no answer' });
    t.match(checkIn(ns, ping(['-f'])), { ok: false, message: 'no address answers: -f not an address' });
    peer('ip', 'link', 'set', 'n1', 'down');
    t.match(
      checkIn(ns, ping(['192.0.2.20'])),
      // ping's own wait ends just before the check's timeout; on a loaded machine the abort may come first.
      { ok: false, message: /^(no address answers: 192\.0\.2\.20 |no answer before the check's timeout from 192\.0\.2\.20)/ },
      'the peer does not answer once its link is down',
    );
  });

  t.test('an aborted ip check ends at once with its pings killed', async (t) => {
    // ping would wait 20 s for 192.0.2.1; the check is aborted after 300 ms.
    const result = checkIn(ns, monitorConfig({ type: 'ip', addresses: ['192.0.2.1'], timeoutMs: 20_000 }), 300);
    t.match(result, { ok: false, message: /no answer before the check's timeout from 192\.0\.2\.1/ });
    t.ok(result.elapsedMs < 10_000, `the check ended after ${Math.round(result.elapsedMs)} ms, well before ping's own wait`);
  });
}
