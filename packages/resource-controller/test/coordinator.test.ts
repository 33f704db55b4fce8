import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import {
  AlertLog,
  createLogger,
  EventPublisher,
  Ledger,
  RpcServer,
  TandemError,
  readAlerts,
  resolvePaths,
  sleep,
  validateConfigText,
  type ResourceConfig,
} from '@tandem/core';
import { decodeRequest, encodeRequest, tandem, type RequestInit } from '@tandem/protocol';
import {
  ResourceController,
  livePlacements,
  newlyOnline,
  orphans,
  plannerServers,
  provesItselfFree,
  settled,
  type View,
  type ViewServer,
} from '@tandem/resource-controller';

const { GroupAction, ServiceAction, Cause } = tandem.v1;

const server = (name: string, state: string, groups: { group: string; state: string }[] = [], over: Partial<ViewServer> = {}) => ({
  name,
  state,
  incarnation: 1,
  sinceMs: 1000,
  groups,
  local: false,
  ...over,
});

t.test('the planner sees the servers of the view; during startup one still starting is not known yet', async (t) => {
  const view: View = {
    servers: [server('s1', 'online', [], { local: true }), server('s2', 'starting'), server('s3', 'offline')],
    coordinator: 's1',
    startupDone: false,
  };
  t.same(
    plannerServers(view).map((s) => s.state),
    ['online', 'starting', 'offline'],
  );
  t.same(
    plannerServers(view, true).map((s) => s.state),
    ['online', 'unknown', 'offline'],
  );
  t.equal(settled(view), false, 'a server still starting has not said what it runs');
  view.servers[1]!.state = 'online';
  t.equal(settled(view), true);
  view.servers[2]!.state = 'unknown';
  t.equal(settled(view), false, 'heard by hb but not by its node manager');
});

t.test('placements: the servers that are up, this one, then the orders still settling; a server down holds nothing', async (t) => {
  const view: View = {
    servers: [
      server('s1', 'online', [], { local: true }),
      server('s2', 'online', [{ group: 'web', state: 'online' }]),
      server('s3', 'offline', [{ group: 'db', state: 'online' }]),
    ],
    coordinator: 's1',
    startupDone: true,
  };
  const local = [{ group: 'mail', state: 'online', server: 's1' }];
  t.same(livePlacements(view, local, new Map()), [
    { group: 'web', state: 'online', server: 's2' },
    { group: 'mail', state: 'online', server: 's1' },
  ]);
  const settling = new Map([
    ['web', { server: 's2', state: 'offline' }],
    ['db', { server: 's1', state: 'starting' }],
  ]);
  t.same(livePlacements(view, local, settling), [
    { group: 'mail', state: 'online', server: 's1' },
    { group: 'db', state: 'starting', server: 's1' },
  ]);
  const dead = view.servers[2]!;
  t.same(orphans(view, dead, livePlacements(view, local, new Map())), [{ group: 'db', state: 'online', server: 's3' }]);
  t.same(orphans(view, dead, livePlacements(view, local, settling)), [], 'a group already started elsewhere is no orphan');
});

t.test('newlyOnline names the servers that came online since the last view', async (t) => {
  const before: View = { servers: [server('s1', 'online'), server('s2', 'starting')], coordinator: 's1', startupDone: true };
  const now: View = { servers: [server('s1', 'online'), server('s2', 'online')], coordinator: 's1', startupDone: true };
  t.same(newlyOnline(before, now), ['s2']);
  t.same(newlyOnline(now, now), []);
});

/** A controller on s1 of three servers, with a stand-in node manager that records the orders it is given. */
async function setup(
  t: Tap.Test,
  groups: string,
  opts: {
    failOrders?: boolean;
    /** the receiving server refuses this many orders first (it does not see s1 online yet) */
    refuseOrders?: number;
    onGroup?: (cmd: tandem.v1.GroupCommand) => Promise<string>;
    /** what the previous life of rc left in its last-start file (a server back after a power cut) */
    lastStart?: Record<string, unknown>;
  } = {},
) {
  const dir = mkdtempSync(join(tmpdir(), 'tnd-co-'));
  const text = `
cluster:
  name: demo
  heartbeat: { interval: 100ms, timeout: 500ms }
  emergency: { action: exec, command: "true", deadline: 100ms }
  networkPartition: { fenceGrace: 300ms }
servers: [ { name: s1 }, { name: s2 }, { name: s3 } ]
groups:
${groups.replaceAll('DIR', dir)}
`;
  const v = validateConfigText(text);
  if (!v.ok) throw new Error(v.problems.join('\n'));
  const paths = resolvePaths({ TANDEM_HOME: dir });
  mkdirSync(paths.run, { recursive: true });
  if (opts.lastStart) {
    mkdirSync(paths.state, { recursive: true });
    writeFileSync(join(paths.state, 'rc-last-start.json'), JSON.stringify(opts.lastStart));
  }
  const log = createLogger({ daemon: 'rc', server: 's1', logsDir: paths.logs, console: false });
  const events = new EventPublisher('s1', 'rc');
  const orders: tandem.v1.GroupOrder[] = [];
  const nm = new RpcServer(
    paths.rpc('nm'),
    async (request) => {
      if (request.body === 'group' && request.group && opts.onGroup) return { ack: { message: await opts.onGroup(request.group) } };
      if (request.body !== 'order' || !request.order) throw new Error(`unexpected ${request.body}`);
      orders.push(request.order);
      if (orders.length <= (opts.refuseOrders ?? 0)) throw new TandemError('REFUSED', `order from s1 refused: it is unknown here`);
      if (opts.failOrders) throw new TandemError('UNAVAILABLE', `${request.order.server} is unreachable`);
      return { ack: { message: 'done' } };
    },
    log,
  );
  await nm.bind();
  const controller = new ResourceController({
    server: 's1',
    config: v.config,
    paths,
    log,
    alerts: new AlertLog(paths.alerts, 's1', 'rc'),
    events,
    ledger: new Ledger(paths.ledger),
  });
  t.teardown(async () => {
    await controller.shutdown('test over');
    nm.close();
    events.close();
    log.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const call = async (body: Omit<RequestInit, 'id' | 'revision' | 'deadlineMs' | 'origin'>) => {
    const decoded = decodeRequest(encodeRequest({ id: 'test', ...body }));
    if (!decoded.ok) throw new Error(decoded.reason);
    return controller.handle(decoded.message);
  };
  const state = (group: string) => controller.status().find((g) => g.name === group)?.state;
  const trace = (): string => {
    try {
      return readFileSync(join(dir, 'trace'), 'utf8');
    } catch {
      return '';
    }
  };
  return { dir, paths, controller, call, orders, state, trace };
}

const traced = (group: string, servers: string, autoStart = true) => `  - name: ${group}
    servers: [${servers}]
    autoStart: ${autoStart}
    resources:
      - { name: ${group}-r, type: exec, cwd: DIR, start: 'echo "start ${group} $TANDEM_EVENT" >> trace', stop: 'echo "stop ${group} $TANDEM_FACTOR" >> trace' }`;

const activate = { service: { action: ServiceAction.SERVICE_ACTION_ACTIVATE, cause: Cause.CAUSE_STARTUP } };
type ViewInit = tandem.v1.ClusterView.$Properties;
const view = (states: [string, string, { group: string; state: string }[]?][], coordinator = 's1', sinceMs = Date.now()): ViewInit => ({
  coordinator,
  startupDone: false,
  servers: states.map(([name, state, groups]) => ({ name, state, incarnation: 1, sinceMs, groups: groups ?? [], local: name === 's1' })),
});

/** Every server online, nothing reported running yet. */
const allOnline = (coordinator = 's1'): ViewInit =>
  view(
    [
      ['s1', 'online'],
      ['s2', 'online'],
      ['s3', 'online'],
    ],
    coordinator,
  );

async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** s2 ran `running` (startup done, s1 the coordinator), then went down now: the views rc is given. */
async function s2GoesDown(call: (body: { view: ViewInit }) => Promise<unknown>, running: { group: string; state: string }[]) {
  const before = view([
    ['s1', 'online'],
    ['s2', 'online', running],
    ['s3', 'online'],
  ]);
  before.startupDone = true;
  await call({ view: before });
  const downAt = Date.now();
  const after = view(
    [
      ['s1', 'online'],
      ['s2', 'offline', running],
      ['s3', 'online'],
    ],
    's1',
    downAt,
  );
  after.startupDone = true;
  await call({ view: after });
  return { downAt, after };
}

t.test('the coordinator waits until every server has said what it runs, then places each group once', async (t) => {
  const { call, orders, state, trace } = await setup(t, [traced('web', 's1, s2'), traced('db', 's2, s1'), traced('mail', 's3')].join('\n'));
  await call(activate);
  await call({
    view: view([
      ['s1', 'online'],
      ['s2', 'starting'],
      ['s3', 'online'],
    ]),
  });
  await sleep(200);
  t.equal(state('web'), 'offline', 'nothing starts while s2 is still starting');
  t.same(orders, []);
  await call({
    view: allOnline(),
  });
  await until('web online here', () => state('web') === 'online');
  await until('two orders', () => orders.length === 2);
  t.same(
    orders.map((o) => [o.server, o.group, GroupAction[o.action], o.event, o.coordinator]),
    [
      ['s2', 'db', 'GROUP_ACTION_START', 'START', 's1'],
      ['s3', 'mail', 'GROUP_ACTION_START', 'START', 's1'],
    ],
  );
  t.equal(trace(), 'start web START\n');
  t.match(await call({ status: {} }), { groups: { startupDone: true } }, 'rc says the startup is done, for nm to tell the others');
  // Another view: the startup is not planned again.
  await call({
    view: view([
      ['s1', 'online'],
      ['s2', 'online', [{ group: 'db', state: 'online' }]],
      ['s3', 'online'],
    ]),
  });
  await sleep(200);
  t.equal(orders.length, 2, 'no group is placed twice');
});

t.test('a startup order the other server refuses is sent again a heartbeat timeout later, 5 times in all', async (t) => {
  const groups = [traced('web', 's1, s2'), traced('db', 's2, s1')].join('\n');
  await t.test('refused once: placed on the second try', async (t) => {
    const { call, orders } = await setup(t, groups, { refuseOrders: 1 });
    await call(activate);
    const sentMs = Date.now();
    await call({ view: allOnline() });
    await until('the order sent again', () => orders.length === 2);
    t.ok(Date.now() - sentMs >= 500, `sent again ${Date.now() - sentMs} ms later (the heartbeat timeout is 500 ms)`);
    t.same(
      orders.map((o) => [o.server, o.group, GroupAction[o.action], o.event]),
      [
        ['s2', 'db', 'GROUP_ACTION_START', 'START'],
        ['s2', 'db', 'GROUP_ACTION_START', 'START'],
      ],
    );
    await sleep(1200);
    t.equal(orders.length, 2, 'an order carried out is not sent again');
  });
  await t.test('refused every time: 5 orders, then an alert for the operator', async (t) => {
    const { call, orders, paths, state } = await setup(t, groups, { refuseOrders: Infinity });
    await call(activate);
    await call({ view: allOnline() });
    await until('five orders', () => orders.length === 5, 8000);
    await until('the alert', () =>
      readAlerts(paths.alerts).some((a) => a.id === 'TND-RC-0106' && /db not placed at startup/.test(a.message)),
    );
    await sleep(1200);
    t.equal(orders.length, 5, 'no sixth order');
    t.equal(state('web'), 'online', 'the group placed here is not touched');
  });
  await t.test('a group the planner cannot place at startup is said at once, and not tried again', async (t) => {
    const exclusive = (g: string) => traced(g, 's1').replace(`autoStart: true`, `autoStart: true\n    exclusive: true`);
    const { call, orders, paths, state } = await setup(t, [exclusive('web'), exclusive('db')].join('\n'));
    await call(activate);
    await call({ view: allOnline() });
    await until('web online here', () => state('web') === 'online');
    await until('the alert', () =>
      readAlerts(paths.alerts).some(
        (a) => a.id === 'TND-RC-0106' && /group db not placed at startup: no server can host group db/.test(a.message),
      ),
    );
    await sleep(1200);
    t.equal(state('db'), 'offline');
    t.same(orders, [], 'nothing ordered elsewhere');
  });
  await t.test('another server coordinates before the order is sent again: an alert, and no order', async (t) => {
    const { call, orders, paths } = await setup(t, groups, { refuseOrders: Infinity });
    await call(activate);
    await call({ view: allOnline() });
    await until('the first order', () => orders.length === 1);
    await call({ view: { ...allOnline('s2'), startupDone: true } });
    await until('the alert', () =>
      readAlerts(paths.alerts).some((a) => a.id === 'TND-RC-0106' && /db not placed at startup: .*s2 coordinates now/.test(a.message)),
    );
    await sleep(1200);
    t.equal(orders.length, 1, 'this server, no longer the coordinator, sends nothing');
  });
  await t.test('an order that failed otherwise (a start that ran and failed there) is not sent again', async (t) => {
    const { call, orders } = await setup(t, groups, { failOrders: true });
    await call(activate);
    await call({ view: allOnline() });
    await until('the order', () => orders.length === 1);
    await sleep(1200);
    t.equal(orders.length, 1);
  });
});

t.test('a server that went down: its groups start here at once, their resources only after the fence grace, as FAILOVER', async (t) => {
  const { call, orders, state, trace } = await setup(t, [traced('db', 's2, s1'), traced('mail', 's2', false)].join('\n'));
  await call(activate);
  const { downAt, after } = await s2GoesDown(call, [
    { group: 'db', state: 'online' },
    { group: 'mail', state: 'online' },
  ]);
  await sleep(100);
  t.equal(state('db'), 'starting', 'the failover has begun');
  t.equal(trace(), '', 'but its resource waits for the rest of the fence grace (300 ms)');
  await until('db online here', () => state('db') === 'online');
  t.ok(Date.now() - downAt >= 300, `started ${Date.now() - downAt} ms after the server went down`);
  t.equal(trace(), 'start db FAILOVER\n');
  t.equal(state('mail'), 'offline', 'a manual group is not failed over');
  t.same(orders, [], 'nothing was ordered elsewhere');
  // The same view again: handled once.
  await call({ view: { ...after, servers: after.servers } });
  await sleep(100);
  t.equal(trace(), 'start db FAILOVER\n');
});

t.test('a failover ordered to another server carries the rest of the fence grace, and the order waits it out', async (t) => {
  const { call, orders, state, trace } = await setup(t, traced('db', 's2, s3, s1'));
  await call(activate);
  const { downAt } = await s2GoesDown(call, [{ group: 'db', state: 'online' }]);
  await until('the order to s3', () => orders.length === 1);
  // The grace left when the order was sent: at least what is left now, at most all of it.
  const leftNow = downAt + 300 - Date.now();
  const o = orders[0]!;
  t.match(o, { server: 's3', group: 'db', action: GroupAction.GROUP_ACTION_START, event: 'FAILOVER' });
  t.ok(
    o.fenceWaitMs >= leftNow && o.fenceWaitMs <= 300,
    `the order says to wait ${o.fenceWaitMs} ms of the 300 ms grace (${leftNow} ms left now)`,
  );

  // Received here: the resource starts only once that wait is over.
  const orderedAt = Date.now();
  await call({
    order: { server: 's1', group: 'db', action: GroupAction.GROUP_ACTION_START, event: 'FAILOVER', coordinator: 's3', fenceWaitMs: 250 },
  });
  t.ok(Date.now() - orderedAt >= 250, `started ${Date.now() - orderedAt} ms after the order`);
  t.equal(state('db'), 'online');
  t.equal(trace(), 'start db FAILOVER\n');
});

t.test('only a floating IP that checks for a duplicate starts during the fence grace of a failover', async (t) => {
  const fip = { type: 'fip', checkDuplicate: true } as ResourceConfig;
  t.equal(provesItselfFree(fip, 'FAILOVER'), true);
  t.equal(provesItselfFree(fip, 'START'), false, 'only a failover has a fence grace to overlap');
  t.equal(provesItselfFree({ ...fip, checkDuplicate: false } as ResourceConfig, 'FAILOVER'), false, 'without its check it proves nothing');
  t.equal(provesItselfFree({ type: 'exec' } as ResourceConfig, 'FAILOVER'), false);
});

t.test('a server back after a power cut runs the start scripts of the groups it held with RECOVER, and starts nothing', async (t) => {
  const app = `  - name: web
    servers: [s2, s1]
    resources:
      - { name: web-app, type: exec, mode: async, cwd: DIR, start: 'echo "async $TANDEM_EVENT" >> trace; exec sleep 60' }`;
  const held = { TANDEM_EVENT: 'START', TANDEM_SERVER: 'HOME', TANDEM_PRIORITY: '1', TANDEM_DISK: 'SUCCESS' };
  const { call, state, trace } = await setup(t, [traced('db', 's1, s2'), traced('mail', 's2, s1'), app].join('\n'), {
    // db and web were online here when the power went; mail had been stopped.
    lastStart: { 'db/db-r': held, 'web/web-app': held },
  });
  t.match(await call({ service: { action: ServiceAction.SERVICE_ACTION_RECOVER, cause: Cause.CAUSE_STARTUP } }), {
    ack: { message: 'recovered: db/db-r' },
  });
  t.equal(trace(), 'start db RECOVER\n', "db's start script ran with RECOVER; web's async command (the application) did not run");
  t.same([state('db'), state('mail'), state('web')], ['offline', 'offline', 'offline'], 'nothing is online');
  t.match(await call({ service: { action: ServiceAction.SERVICE_ACTION_RECOVER, cause: Cause.CAUSE_STARTUP } }), {
    ack: { message: 'nothing to recover' },
  });
  await call(activate);
  await t.rejects(call({ service: { action: ServiceAction.SERVICE_ACTION_RECOVER, cause: Cause.CAUSE_STARTUP } }), {
    code: 'REFUSED',
    message: /only before its cluster service starts/,
  });
});

t.test('a group stopped here leaves nothing to recover', async (t) => {
  const { call, state, trace } = await setup(t, traced('db', 's1, s2'));
  await call(activate);
  await call({ view: allOnline() });
  await until('db online here', () => state('db') === 'online');
  await call({ service: { action: ServiceAction.SERVICE_ACTION_DEACTIVATE, cause: Cause.CAUSE_CLUSTER_STOP } });
  t.equal(state('db'), 'offline');
  t.match(await call({ service: { action: ServiceAction.SERVICE_ACTION_RECOVER, cause: Cause.CAUSE_STARTUP } }), {
    ack: { message: 'nothing to recover' },
  });
  t.equal(trace(), 'start db START\nstop db CLUSTERSHUTDOWN\n', 'no RECOVER run');
});

t.test('a server that is not the coordinator places nothing; orders run here with the event or factor given', async (t) => {
  const { call, state, trace } = await setup(t, traced('web', 's1, s2'));
  await call(activate);
  await call({
    view: allOnline('s2'),
  });
  await sleep(200);
  t.equal(state('web'), 'offline', 'the coordinator is s2: it places the groups');
  await t.rejects(call({ group: { action: GroupAction.GROUP_ACTION_START, group: 'web' } }), {
    code: 'UNAVAILABLE',
    message: /s1 is not the coordinator \(s2\)/,
  });
  const start = { server: 's1', group: 'web', action: GroupAction.GROUP_ACTION_START, event: 'FAILOVER', coordinator: 's2' };
  t.match(await call({ order: start }), { ack: { message: 'group web is online on s1' } });
  t.match(await call({ order: start }), { ack: { message: 'group web is already online on s1' } }, 'an order repeated changes nothing');
  const stop = { server: 's1', group: 'web', action: GroupAction.GROUP_ACTION_STOP, factor: 'GROUPMOVE', coordinator: 's2' };
  t.match(await call({ order: stop }), { ack: { message: 'group web is offline' } });
  t.equal(trace(), 'start web FAILOVER\nstop web GROUPMOVE\n');
});

t.test('bad views and orders are refused and change nothing', async (t) => {
  const { call, state } = await setup(t, traced('web', 's1, s2'));
  await call(activate);
  await t.rejects(
    call({
      view: view([
        ['s1', 'online'],
        ['s2', 'online'],
      ]),
    }),
    { code: 'BAD_REQUEST', message: /names servers s1, s2/ },
  );
  const order = (o: Partial<tandem.v1.GroupOrder>) => call({ order: { server: 's1', group: 'web', coordinator: 's2', ...o } });
  await t.rejects(order({ action: GroupAction.GROUP_ACTION_START, event: 'RECOVER' }), { code: 'BAD_REQUEST', message: /valid event/ });
  await t.rejects(order({ action: GroupAction.GROUP_ACTION_STOP, factor: 'WHATEVER' }), { code: 'BAD_REQUEST', message: /valid factor/ });
  await t.rejects(order({ action: GroupAction.GROUP_ACTION_MOVE }), { code: 'BAD_REQUEST', message: /start or stop/ });
  await t.rejects(order({ action: GroupAction.GROUP_ACTION_START, event: 'FAILOVER', fenceWaitMs: 2 ** 32 - 1 }), {
    code: 'BAD_REQUEST',
    message: /fence wait of 4294967295 ms, longer than the whole operation may take/,
  });
  await t.rejects(order({ server: 's2', action: GroupAction.GROUP_ACTION_START, event: 'START' }), {
    code: 'BAD_REQUEST',
    message: /order for s2 sent to s1/,
  });
  await t.rejects(order({ group: 'nope', action: GroupAction.GROUP_ACTION_START, event: 'START' }), { code: 'NOT_FOUND' });
  await t.rejects(call({ nodeCommand: { action: tandem.v1.NodeAction.NODE_ACTION_RETURN, server: 's2' } }), {
    code: 'BAD_REQUEST',
    message: /node down only/,
  });
  t.equal(state('web'), 'offline');
});

t.test('an operator command on the coordinator: a move stops here and orders the start there; a failed order is reported', async (t) => {
  const { call, orders, state, trace } = await setup(t, traced('web', 's1, s2'), { failOrders: true });
  await call(activate);
  await call({
    view: allOnline(),
  });
  await until('web online here', () => state('web') === 'online');
  await t.rejects(call({ group: { action: GroupAction.GROUP_ACTION_MOVE, group: 'web', server: 's3' } }), {
    code: 'REFUSED',
    message: /s3 is not in the servers of group web/,
  });
  t.equal(state('web'), 'online', 'a refused move stops nothing');
  await t.rejects(call({ group: { action: GroupAction.GROUP_ACTION_MOVE, group: 'web', server: 's2' } }), {
    code: 'UNAVAILABLE',
    message: /start web on s2: s2 is unreachable/,
  });
  t.same(
    orders.map((o) => [o.server, GroupAction[o.action], o.event]),
    [['s2', 'GROUP_ACTION_START', 'START']],
  );
  t.equal(state('web'), 'offline');
  t.equal(trace(), 'start web START\nstop web GROUPMOVE\n');
});

t.test('a server that comes online takes back the groups that prefer it and fail back automatically', async (t) => {
  const groups = [
    `  - name: web
    servers: [s2, s1]
    autoFailback: true
    resources:
      - { name: web-r, type: exec, cwd: DIR, start: 'echo "start web $TANDEM_EVENT" >> trace', stop: 'echo "stop web $TANDEM_FACTOR" >> trace' }`,
    traced('db', 's2, s1'),
  ].join('\n');
  const { call, orders, state, trace } = await setup(t, groups);
  await call(activate);
  const first = view([
    ['s1', 'online'],
    ['s2', 'offline'],
    ['s3', 'online'],
  ]);
  first.startupDone = false;
  await call({ view: first });
  await until('web and db online here (s2 is down)', () => state('web') === 'online' && state('db') === 'online');
  t.same(trace().trim().split('\n').sort(), ['start db START', 'start web START'], 'started at startup on the server that is up');
  const running = [
    { group: 'web', state: 'online' },
    { group: 'db', state: 'online' },
  ];
  const back = view([
    ['s1', 'online', running],
    ['s2', 'online'],
    ['s3', 'online'],
  ]);
  back.startupDone = true;
  await call({ view: back });
  await until('web stopped here', () => state('web') === 'offline');
  await until('the start order', () => orders.length === 1);
  t.same(
    orders.map((o) => [o.server, o.group, GroupAction[o.action], o.event]),
    [['s2', 'web', 'GROUP_ACTION_START', 'START']],
    'web goes back to s2',
  );
  t.equal(state('db'), 'online', 'db does not fail back (autoFailback false)');
  t.match(trace(), /stop web GROUPMOVE\n$/);
});

t.test('a start failure with failovers left asks the coordinator to fail the group over, after the start has ended', async (t) => {
  const asked: tandem.v1.GroupCommand[] = [];
  const group = `  - name: web
    servers: [s1, s2]
    resources:
      - { name: web-r, type: exec, cwd: DIR, start: 'echo "start web $TANDEM_EVENT" >> trace; exit 1', onStartFailure: { retries: 0, failovers: 1, finalAction: stop-group } }`;
  let refuse = false;
  const { call, dir, state, trace } = await setup(t, group, {
    onGroup: async (cmd) => {
      asked.push(cmd);
      if (refuse) throw new TandemError('REFUSED', 'group web failed over 1 times in a row (limit 1)', { reason: 'FAILOVER_LIMIT' });
      return 'done: stop web on s1, start web on s2';
    },
  });
  await call(activate);
  await call({
    view: allOnline(),
  });
  await until('the failover request', () => asked.length === 1);
  t.match(asked[0], { action: GroupAction.GROUP_ACTION_FAILOVER, group: 'web', cause: Cause.CAUSE_FAILOVER, failoverLimit: 1 });
  t.not(state('web'), 'offline', 'the final action (stop-group) waits: the group may fail over');
  t.equal(trace(), 'start web START\n');

  // Refused (the failovers in a row are used up): the final action runs then.
  refuse = true;
  await call({ group: { action: GroupAction.GROUP_ACTION_START, group: 'web', cause: Cause.CAUSE_OPERATOR } }).catch(() => undefined);
  await until('the second failover request', () => asked.length === 2);
  await until('the group stopped by its final action', () => state('web') === 'offline');
  t.pass('stop-group ran once the failover was refused');
  const kept = JSON.parse(readFileSync(join(resolvePaths({ TANDEM_HOME: dir }).state, 'rc-last-start.json'), 'utf8')) as object;
  t.same(Object.keys(kept), [], 'stopped by its final action, web leaves nothing for a recovery after a power cut');
});

t.test('a failover the coordinator could not answer (no coordinator, a timeout) leaves the group failed: no final action', async (t) => {
  const asked: tandem.v1.GroupCommand[] = [];
  const group = `  - name: web
    servers: [s1, s2]
    resources:
      - { name: web-r, type: exec, cwd: DIR, start: 'echo "start web $TANDEM_EVENT" >> trace; exit 1', onStartFailure: { retries: 0, failovers: 1, finalAction: stop-group } }`;
  const { call, state, trace } = await setup(t, group, {
    onGroup: async (cmd) => {
      asked.push(cmd);
      throw new TandemError('UNAVAILABLE', 'there is no coordinator yet');
    },
  });
  await call(activate);
  await call({ view: allOnline() });
  await until('the failover request', () => asked.length === 1);
  await sleep(300);
  t.equal(state('web'), 'failed', 'the group may still be moved: stop-group did not run');
  t.equal(trace(), 'start web START\n', 'and nothing was stopped');
});

t.test('the start-failure failovers in a row count until the group comes online somewhere', async (t) => {
  const { call, orders, state } = await setup(t, traced('web', 's2, s1, s3'));
  await call(activate);
  await call({
    view: view([
      ['s1', 'online'],
      ['s2', 'online', [{ group: 'web', state: 'failed' }]],
      ['s3', 'online'],
    ]),
  });
  const failover = { group: { action: GroupAction.GROUP_ACTION_FAILOVER, group: 'web', cause: Cause.CAUSE_FAILOVER, failoverLimit: 1 } };
  await call(failover);
  t.equal(state('web'), 'online', 'failed over from s2 to here');
  t.same(
    orders.map((o) => [o.server, GroupAction[o.action]]),
    [['s2', 'GROUP_ACTION_STOP']],
  );
  // Its start failing here too, the rung asks again: one failover in a row is the limit.
  await t.rejects(call(failover), { code: 'REFUSED', message: /in a row/ });
  // nm reports web online here: it started, and the count is over.
  await call({
    view: view([
      ['s1', 'online', [{ group: 'web', state: 'online' }]],
      ['s2', 'online'],
      ['s3', 'online'],
    ]),
  });
  await call(failover);
  t.equal(state('web'), 'offline', 'failed over again, away from here');
  t.same(orders.at(-1) && [orders.at(-1)!.server, GroupAction[orders.at(-1)!.action]], ['s2', 'GROUP_ACTION_START']);
});

t.test('a server that restarted faster than the heartbeat timeout: the groups of its previous life start elsewhere', async (t) => {
  const { call, state, trace } = await setup(t, traced('db', 's2, s1'));
  await call(activate);
  const running = view([
    ['s1', 'online'],
    ['s2', 'online', [{ group: 'db', state: 'online' }]],
    ['s3', 'online'],
  ]);
  running.startupDone = true;
  await call({ view: running });
  await sleep(100);
  t.equal(state('db'), 'offline', 'db runs on s2');
  // s2 is heard again at once, as a new life that runs nothing (never offline in between).
  const reborn = view([
    ['s1', 'online'],
    ['s2', 'isolated'],
    ['s3', 'online'],
  ]);
  reborn.startupDone = true;
  reborn.servers![1]!.incarnation = 2;
  await call({ view: reborn });
  await until('db online here', () => state('db') === 'online');
  t.equal(trace(), 'start db FAILOVER\n');
});

t.test('a restart seen while another server coordinates is left to it: this server, coordinator later, moves nothing for it', async (t) => {
  const { call, state, trace } = await setup(t, traced('db', 's2, s1'));
  await call(activate);
  const seen = (coordinator: string, db: { group: string; state: string }[], s2Incarnation: number) => {
    const v = view(
      [
        ['s1', 'online'],
        ['s2', 'online', db],
        ['s3', 'online'],
      ],
      coordinator,
    );
    v.startupDone = true;
    v.servers![1]!.incarnation = s2Incarnation;
    return v;
  };
  await call({ view: seen('s3', [{ group: 'db', state: 'online' }], 1) });
  // s2 restarted faster than the heartbeat timeout; s3 coordinates and handles it (an operator
  // has since stopped db, say): nothing of it is left for s1 to act on when it coordinates.
  await call({ view: seen('s3', [], 2) });
  await call({ view: seen('s1', [], 2) });
  await sleep(300);
  t.equal(state('db'), 'offline');
  t.equal(trace(), '', 'no failover of a life long gone');
});
