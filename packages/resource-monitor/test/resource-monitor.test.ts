import t from 'tap';
import { TandemError, type AlertId, type MonitorConfig } from '@tandem/core';
import { v1 } from '@tandem/protocol';
import {
  ResourceMonitor,
  realTimers,
  type CheckResult,
  type FinalActionOrder,
  type GroupFacts,
  type NmApi,
  type RcApi,
  type Timers,
} from '@tandem/resource-monitor';

/** A call that waits until the test lets it go on: `reached` resolves once the call is waiting. */
class Gate {
  #arrived: () => void = () => undefined;
  #open: () => void = () => undefined;
  readonly reached = new Promise<void>((resolve) => (this.#arrived = resolve));
  readonly #opened = new Promise<void>((resolve) => (this.#open = resolve));
  async pass(): Promise<void> {
    this.#arrived();
    await this.#opened;
  }
  open(): void {
    this.#open();
  }
}

const noServer = (g: string) => new TandemError('REFUSED', `group ${g} cannot fail over: no other server`, { reason: 'NO_SERVER' });

/** rc as a table of groups that the test edits, recording every recovery call. */
class FakeRc implements RcApi {
  groupsHere: GroupFacts[] = [group('online')];
  calls: string[] = [];
  /** what the failover call throws, if anything */
  failoverError: ((g: string) => TandemError) | undefined;
  silent = false;
  /** the next groups() or failoverGroup() call waits at this gate */
  groupsGate: Gate | undefined;
  failoverGate: Gate | undefined;
  async groups(): Promise<GroupFacts[]> {
    const gate = this.groupsGate;
    this.groupsGate = undefined;
    await gate?.pass();
    if (this.silent) throw new TandemError('TIMEOUT', 'tandem-rc did not answer within 2000 ms');
    return structuredClone(this.groupsHere);
  }
  async restartResource(g: string, r: string): Promise<void> {
    this.calls.push(`restart-resource ${g}/${r}`);
  }
  async restartGroup(g: string): Promise<void> {
    this.calls.push(`restart-group ${g}`);
  }
  async failoverGroup(g: string): Promise<void> {
    this.calls.push(`failover ${g}`);
    const gate = this.failoverGate;
    this.failoverGate = undefined;
    await gate?.pass();
    if (this.failoverError) throw this.failoverError(g);
  }
  async stopGroup(g: string): Promise<void> {
    this.calls.push(`stop-group ${g}`);
  }
}

class FakeNm implements NmApi {
  orders: FinalActionOrder[] = [];
  async finalAction(order: FinalActionOrder): Promise<void> {
    this.orders.push(order);
  }
}

function group(state: string, appState = state === 'offline' ? 'offline' : 'online'): GroupFacts {
  return {
    name: 'web',
    state,
    server: state === 'offline' ? '' : 'node1',
    resources: [{ name: 'app', state: appState, pid: 4242, alive: true }],
  };
}

type MonitorOverrides = Omit<Partial<MonitorConfig>, 'recovery'> & { recovery?: Partial<MonitorConfig['recovery']> };

const monitorConfig = (over: MonitorOverrides): MonitorConfig => ({
  name: 'app-check',
  type: 'custom',
  command: 'unused: the test scripts the results',
  intervalMs: 1000,
  timeoutMs: 1000,
  retries: 0,
  startDelayMs: 0,
  when: 'always',
  delayWarningPercent: 80,
  ...over,
  recovery: { target: 'web', kind: 'group', group: 'web', reactivations: 3, failovers: 0, finalAction: 'none', ...over.recovery },
});

/** Timers that never fire: the test drives the cycles with runCycle. */
const manualTimers: Timers = { after: () => () => undefined };

function setup(monitors: MonitorConfig[], timers: Timers = manualTimers) {
  const clock = { now: 0 };
  const rc = new FakeRc();
  const nm = new FakeNm();
  const alerts: AlertId[] = [];
  const events: string[] = [];
  const checks = new Map<string, number>();
  /** what each monitor's next check answers, and how long it takes on the fake clock */
  const script = new Map<string, { result: CheckResult; takesMs: number }>();
  /** runs inside the next check of any monitor, once */
  const during: { check?: () => void } = {};
  const rm = new ResourceMonitor({
    server: 'node1',
    config: { monitors },
    rc,
    nm,
    alerts: { raise: (id) => alerts.push(id) },
    events: { publish: (kind, subject, state) => events.push(`${kind} ${subject} ${state}`) },
    log: { info: () => undefined, warn: () => undefined, error: () => undefined },
    now: () => clock.now,
    timers,
    makeMonitor: (config) => ({
      async check() {
        checks.set(config.name, (checks.get(config.name) ?? 0) + 1);
        const step = script.get(config.name) ?? { result: { ok: true, message: 'fine' }, takesMs: 0 };
        const hook = during.check;
        delete during.check;
        hook?.();
        clock.now += step.takesMs;
        return step.result;
      },
    }),
  });
  t.teardown(() => rm.stop());
  const answer = (name: string, ok: boolean, takesMs = 0) => script.set(name, { result: { ok, message: ok ? 'fine' : 'broken' }, takesMs });
  const status = (name: string) => rm.statuses().find((s) => s.name === name);
  return { rm, rc, nm, alerts, events, checks, clock, answer, status, during };
}

const request = (body: Record<string, unknown>) => v1.Request.create({ id: 'r1', ...body });

t.test('consecutive failures become an error after retries + 1 checks', async (t) => {
  const { rm, rc, alerts, answer, status } = setup([monitorConfig({ retries: 2 })]);
  rm.activate();
  answer('app-check', false);
  await rm.runCycle('app-check');
  await rm.runCycle('app-check');
  t.match(status('app-check'), { state: 'normal', consecutiveFailures: 2 });
  t.same(alerts, [], 'no alert before the third failure');
  t.same(rc.calls, []);
  await rm.runCycle('app-check');
  t.match(status('app-check'), { state: 'error', reactivations: 1 });
  t.same(alerts, ['TND-RM-0201', 'TND-RM-0204']);
  t.same(rc.calls, ['restart-group web']);
});

t.test('a failed check between good ones does not count towards an error', async (t) => {
  const { rm, rc, answer, status } = setup([monitorConfig({ retries: 1 })]);
  rm.activate();
  answer('app-check', false);
  await rm.runCycle('app-check');
  answer('app-check', true);
  await rm.runCycle('app-check');
  answer('app-check', false);
  await rm.runCycle('app-check');
  t.match(status('app-check'), { state: 'normal', consecutiveFailures: 1 });
  t.same(rc.calls, []);
});

t.test('reactivations go up to the threshold, then the final action, once', async (t) => {
  const { rm, rc, nm, alerts, answer, status } = setup([
    monitorConfig({
      target: 'app',
      when: 'always',
      recovery: { target: 'app', kind: 'resource', reactivations: 2, finalAction: 'stop-cluster-service' },
    }),
  ]);
  rm.activate();
  answer('app-check', false);
  for (let i = 0; i < 4; i++) await rm.runCycle('app-check');
  t.same(rc.calls, ['restart-resource web/app', 'restart-resource web/app']);
  t.same(nm.orders, [{ action: 'stop-cluster-service', group: 'web', reason: 'monitor app-check: broken', source: 'app-check' }]);
  t.same(alerts, ['TND-RM-0201', 'TND-RM-0204', 'TND-RM-0204', 'TND-RM-0206']);
  t.match(status('app-check'), { state: 'error', reactivations: 2, finalActionDone: true });
});

t.test('a failover refused by rc for want of another server is skipped and the final action follows in the same cycle', async (t) => {
  const { rm, rc, alerts, answer, status } = setup([
    monitorConfig({ recovery: { reactivations: 0, failovers: 1, finalAction: 'stop-group' } }),
  ]);
  rc.failoverError = noServer;
  rm.activate();
  answer('app-check', false);
  await rm.runCycle('app-check');
  t.same(rc.calls, ['failover web', 'stop-group web']);
  t.same(alerts, ['TND-RM-0201', 'TND-RM-0205', 'TND-RM-0206']);
  t.match(status('app-check'), { failovers: 0, finalActionDone: true });
});

const failoverFailures: [string, (g: string) => TandemError][] = [
  ['refused because the cluster is suspended', (g) => new TandemError('REFUSED', `group ${g} cannot fail over: the cluster is suspended`)],
  ['refused with another reason', (g) => new TandemError('REFUSED', `group ${g} is busy`, { reason: 'BUSY' })],
  ['not answered in time', () => new TandemError('TIMEOUT', 'tandem-rc did not answer within 10000 ms')],
];
for (const [how, error] of failoverFailures) {
  t.test(`a failover ${how} ends the attempt without escalating, and the next failing check asks again`, async (t) => {
    const { rm, rc, nm, alerts, answer, status } = setup([
      monitorConfig({ recovery: { reactivations: 0, failovers: 1, finalAction: 'stop-cluster-service' } }),
    ]);
    rc.failoverError = error;
    rm.activate();
    answer('app-check', false);
    await rm.runCycle('app-check');
    t.same(rc.calls, ['failover web']);
    t.same(alerts, ['TND-RM-0201'], 'no skipped-failover alert and no final action');
    t.same(nm.orders, []);
    t.match(status('app-check'), { state: 'error', failovers: 0, finalActionDone: false });
    rc.failoverError = undefined;
    await rm.runCycle('app-check');
    t.same(rc.calls, ['failover web', 'failover web'], 'the failover is tried again');
    t.match(status('app-check'), { failovers: 1, finalActionDone: false });
  });
}

const serviceChanges: [string, (rm: ResourceMonitor) => void][] = [
  ['suspended', (rm) => rm.suspend()],
  ['stopped', (rm) => rm.deactivate()],
  ['suspended by the operator', (rm) => rm.suspendMonitors(['app-check'])],
];
for (const [how, change] of serviceChanges) {
  t.test(`a recovery in flight takes no action once the monitor is ${how} while it asks rc for the groups`, async (t) => {
    const { rm, rc, nm, alerts, answer, during } = setup([monitorConfig({ recovery: { reactivations: 1, finalAction: 'stop-group' } })]);
    rm.activate();
    answer('app-check', false);
    const gate = new Gate();
    during.check = () => (rc.groupsGate = gate); // the recovery's own look at rc waits
    const cycle = rm.runCycle('app-check');
    await gate.reached;
    change(rm);
    gate.open();
    await cycle;
    t.same(rc.calls, [], 'no restart');
    t.same(nm.orders, []);
    t.same(alerts, ['TND-RM-0201']);
    t.match(rm.statuses()[0], { reactivations: 0 });
  });

  t.test(`a failover refused while the monitor is ${how} does not lead to the final action`, async (t) => {
    const { rm, rc, nm, alerts, answer, status } = setup([
      monitorConfig({ recovery: { reactivations: 0, failovers: 1, finalAction: 'stop-cluster-service' } }),
    ]);
    rc.failoverError = noServer;
    const gate = new Gate();
    rc.failoverGate = gate;
    rm.activate();
    answer('app-check', false);
    const cycle = rm.runCycle('app-check');
    await gate.reached;
    change(rm);
    gate.open();
    await cycle;
    t.same(rc.calls, ['failover web'], 'no stop after the refusal');
    t.same(nm.orders, [], 'no final action');
    t.same(alerts, ['TND-RM-0201']);
    t.match(status('app-check'), { failovers: 0, finalActionDone: false });
  });
}

t.test(
  'a failover refused for want of another server while the cluster is suspended during the next rung takes no final action',
  async (t) => {
    const { rm, rc, nm, alerts, answer } = setup([
      monitorConfig({ recovery: { reactivations: 0, failovers: 1, finalAction: 'stop-group' } }),
    ]);
    rc.failoverError = noServer;
    rm.activate();
    answer('app-check', false);
    const failover = new Gate();
    rc.failoverGate = failover;
    const cycle = rm.runCycle('app-check');
    await failover.reached;
    // The refusal moves on to the next rung, which asks rc for the groups again: suspend then.
    const groups = new Gate();
    rc.groupsGate = groups;
    failover.open();
    await groups.reached;
    rm.suspend();
    groups.open();
    await cycle;
    t.same(rc.calls, ['failover web']);
    t.same(nm.orders, []);
    t.same(alerts, ['TND-RM-0201', 'TND-RM-0205']);
  },
);

t.test('an accepted failover is counted and the final action waits for the next error', async (t) => {
  const { rm, rc, answer, status } = setup([monitorConfig({ recovery: { reactivations: 0, failovers: 1, finalAction: 'stop-group' } })]);
  rm.activate();
  answer('app-check', false);
  await rm.runCycle('app-check');
  t.same(rc.calls, ['failover web']);
  t.match(status('app-check'), { failovers: 1, finalActionDone: false });
});

t.test('a server recovery target takes the final action at the first error', async (t) => {
  const { rm, rc, nm, answer } = setup([
    monitorConfig({ recovery: { target: 'server', kind: 'server', group: '', finalAction: 'stop-cluster-service-and-reboot' } }),
  ]);
  rm.activate();
  answer('app-check', false);
  await rm.runCycle('app-check');
  t.same(rc.calls, []);
  t.match(nm.orders, [{ action: 'stop-cluster-service-and-reboot', source: 'app-check' }]);
});

t.test('counters reset after the first good check past the start delay', async (t) => {
  const { rm, rc, alerts, checks, clock, answer, status } = setup([monitorConfig({ startDelayMs: 5000 })]);
  rm.activate();
  t.equal(await rm.runCycle('app-check'), 1000, 'inside the start delay the cycle only looks at rc again after an interval');
  t.equal(checks.get('app-check'), undefined);
  clock.now += 5000;
  answer('app-check', false);
  await rm.runCycle('app-check');
  t.match(status('app-check'), { state: 'error', reactivations: 1 });
  t.same(rc.calls, ['restart-group web']);

  answer('app-check', true);
  clock.now += 1000;
  t.equal(await rm.runCycle('app-check'), 1000, 'after the reactivation the check waits again');
  t.equal(checks.get('app-check'), 1, 'no check inside the start delay');
  clock.now += 4000;
  await rm.runCycle('app-check');
  t.match(status('app-check'), { state: 'normal', reactivations: 0, failovers: 0, consecutiveFailures: 0, finalActionDone: false });
  t.equal(alerts.at(-1), 'TND-RM-0202');
});

t.test('a monitor reset by the operator climbs the ladder from the start again', async (t) => {
  const { rm, rc, answer, status } = setup([monitorConfig({ recovery: { reactivations: 1, finalAction: 'stop-group' } })]);
  rm.activate();
  answer('app-check', false);
  await rm.runCycle('app-check');
  await rm.runCycle('app-check');
  t.match(status('app-check'), { reactivations: 1, finalActionDone: true });
  const reply = await rm.handle(request({ monitor: { action: v1.MonitorAction.MONITOR_ACTION_RESET, names: ['app-check'] } }));
  t.match(reply, { ack: { message: /app-check/ } });
  t.match(status('app-check'), { reactivations: 0, finalActionDone: false });
  await rm.runCycle('app-check');
  t.same(rc.calls, ['restart-group web', 'stop-group web', 'restart-group web']);
});

t.test('no recovery action while rc is starting or stopping the target', async (t) => {
  const { rm, rc, answer, status } = setup([monitorConfig({})]);
  rc.groupsHere = [group('online', 'stopping')];
  rm.activate();
  answer('app-check', false);
  await rm.runCycle('app-check');
  t.match(status('app-check'), { state: 'error', reactivations: 0 });
  t.same(rc.calls, []);
  rc.groupsHere = [group('online')];
  await rm.runCycle('app-check');
  t.same(rc.calls, ['restart-group web'], 'the ladder acts once the target is settled');
});

t.test('no recovery action when the recovery target runs on another server', async (t) => {
  const { rm, rc, answer, status } = setup([monitorConfig({ when: 'always' })]);
  rc.groupsHere = [{ ...group('online'), server: 'node2' }];
  rm.activate();
  answer('app-check', false);
  await rm.runCycle('app-check');
  t.match(status('app-check'), { state: 'error' });
  t.same(rc.calls, []);
});

t.test('a when-active monitor is off while its target is offline and checks once it is online', async (t) => {
  const { rm, rc, checks, answer, status, events } = setup([monitorConfig({ target: 'app', when: 'active' })]);
  rc.groupsHere = [group('offline')];
  rm.activate();
  answer('app-check', false);
  await rm.runCycle('app-check');
  await rm.runCycle('app-check');
  t.match(status('app-check'), { state: 'off' });
  t.equal(checks.get('app-check'), undefined, 'nothing is checked while the target is offline');
  rc.groupsHere = [group('online')];
  answer('app-check', true);
  await rm.runCycle('app-check');
  t.match(status('app-check'), { state: 'normal' });
  t.equal(checks.get('app-check'), 1);
  t.same(events, ['monitor app-check normal']);
});

t.test('a slow check puts the monitor in warning with one alert per slow episode', async (t) => {
  const { rm, alerts, answer, status } = setup([monitorConfig({ timeoutMs: 1000, delayWarningPercent: 50 })]);
  rm.activate();
  answer('app-check', true, 600);
  await rm.runCycle('app-check');
  await rm.runCycle('app-check');
  t.match(status('app-check'), { state: 'warning', lastDurationMs: 600 });
  t.same(alerts, ['TND-RM-0203']);
  answer('app-check', true, 100);
  await rm.runCycle('app-check');
  t.match(status('app-check'), { state: 'normal' });
  answer('app-check', true, 600);
  await rm.runCycle('app-check');
  t.same(alerts, ['TND-RM-0203', 'TND-RM-0203'], 'a new slow episode warns again');
});

t.test('a check that outlives its timeout fails and is aborted', async (t) => {
  let aborted = false;
  const rc = new FakeRc();
  const rm = new ResourceMonitor({
    server: 'node1',
    config: { monitors: [monitorConfig({ timeoutMs: 30 })] },
    rc,
    nm: new FakeNm(),
    alerts: { raise: () => undefined },
    events: { publish: () => undefined },
    log: { info: () => undefined, warn: () => undefined, error: () => undefined },
    timers: manualTimers,
    makeMonitor: () => ({
      check: (signal) =>
        new Promise((resolve) =>
          signal.addEventListener('abort', () => {
            aborted = true;
            resolve({ ok: true, message: 'too late to count' });
          }),
        ),
    }),
  });
  rm.activate();
  await rm.runCycle('app-check');
  t.equal(aborted, true);
  t.match(rm.statuses()[0], { state: 'error', lastResult: 'no answer within 30 ms' });
});

t.test('nothing is checked while rc does not answer', async (t) => {
  const { rm, rc, checks } = setup([monitorConfig({})]);
  rc.silent = true;
  rm.activate();
  await rm.runCycle('app-check');
  t.equal(checks.get('app-check'), undefined);
});

t.test('the service starts stopped, with every monitor off and nothing checked', async (t) => {
  const { rm, checks, status } = setup([monitorConfig({})]);
  t.equal(rm.service, 'stopped');
  t.equal(await rm.runCycle('app-check'), undefined);
  t.match(status('app-check'), { state: 'off' });
  t.equal(checks.get('app-check'), undefined);
});

t.test('suspended monitors do not check while the others go on', async (t) => {
  const fast = (name: string) => monitorConfig({ name, intervalMs: 5 });
  const { rm, checks, status } = setup([fast('a'), fast('b')], realTimers);
  await rm.handle(request({ service: { action: v1.ServiceAction.SERVICE_ACTION_ACTIVATE } }));
  await rm.handle(request({ monitor: { action: v1.MonitorAction.MONITOR_ACTION_SUSPEND, names: ['a'] } }));
  const before = checks.get('a') ?? 0;
  const deadline = Date.now() + 5000;
  while ((checks.get('b') ?? 0) < 10 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  t.ok((checks.get('b') ?? 0) >= 10, 'b keeps checking');
  t.equal(checks.get('a') ?? 0, before, 'a did not check while suspended');
  t.match(status('a'), { state: 'suspended' });

  await rm.handle(request({ monitor: { action: v1.MonitorAction.MONITOR_ACTION_RESUME, names: [] } }));
  while ((checks.get('a') ?? 0) <= before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  t.ok((checks.get('a') ?? 0) > before, 'a checks again after resume');

  await rm.handle(request({ service: { action: v1.ServiceAction.SERVICE_ACTION_SUSPEND } }));
  t.same(
    rm.statuses().map((s) => s.state),
    ['suspended', 'suspended'],
  );
  t.equal(await rm.runCycle('b'), undefined, 'no cycle runs while the service is suspended');
  await rm.handle(request({ service: { action: v1.ServiceAction.SERVICE_ACTION_DEACTIVATE } }));
  t.same(
    rm.statuses().map((s) => s.state),
    ['off', 'off'],
  );
});

t.test('monitor commands name unknown monitors in a NOT_FOUND error', async (t) => {
  const { rm } = setup([monitorConfig({})]);
  await t.rejects(
    rm.handle(request({ monitor: { action: v1.MonitorAction.MONITOR_ACTION_SUSPEND, names: ['app-check', 'ghost', 'spook'] } })),
    {
      code: 'NOT_FOUND',
      message: 'no monitor named ghost, spook',
    },
  );
  t.match(rm.statuses()[0], { state: 'off' }, 'nothing was changed');
});

t.test('status answers every monitor with its counters', async (t) => {
  const { rm, answer } = setup([monitorConfig({ retries: 5 })]);
  rm.activate();
  answer('app-check', false);
  await rm.runCycle('app-check');
  const reply = await rm.handle(request({ status: {} }));
  t.match(reply, {
    monitors: {
      monitors: [
        {
          name: 'app-check',
          type: 'custom',
          state: 'normal',
          target: 'web',
          consecutiveFailures: 1,
          reactivations: 0,
          failovers: 0,
          lastResult: 'broken',
        },
      ],
    },
  });
});

t.test('requests rm does not serve are refused as bad requests', async (t) => {
  const { rm } = setup([monitorConfig({})]);
  await t.rejects(rm.handle(request({ cluster: { action: v1.ClusterAction.CLUSTER_ACTION_STOP } })), { code: 'BAD_REQUEST' });
  await t.rejects(rm.handle(request({ service: { action: v1.ServiceAction.SERVICE_ACTION_UNSPECIFIED } })), { code: 'BAD_REQUEST' });
});

t.test('an rc event makes a monitor waiting for its target look again at once', async (t) => {
  const delays: number[] = [];
  const recording: Timers = {
    after: (ms) => {
      delays.push(ms);
      return () => undefined;
    },
  };
  const { rm, rc } = setup(
    [monitorConfig({ name: 'off-one', target: 'app', when: 'active' }), monitorConfig({ name: 'busy-one' })],
    recording,
  );
  rc.groupsHere = [group('offline')];
  rm.activate();
  await rm.runCycle('off-one');
  await rm.runCycle('busy-one');
  delays.length = 0;
  rm.hint();
  t.same(delays, [0], 'only the monitor that is off is woken');
});
