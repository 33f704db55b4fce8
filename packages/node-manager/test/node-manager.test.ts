import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import {
  AlertLog,
  EventPublisher,
  Ledger,
  RpcClient,
  RpcServer,
  TandemError,
  createLogger,
  readAlerts,
  resolvePaths,
  sleep,
  validateConfigText,
  type DaemonContext,
  type DaemonName,
  type Paths,
  type RpcHandler,
} from '@tandem/core';
import {
  NodeManager,
  acceptsOrdersFrom,
  lifePath,
  markLife,
  previousLife,
  PEER_DAEMONS,
  gatherStatus,
  loadRebootHistory,
  rebootHistoryPath,
  type NodeManagerOptions,
  type PeerDaemon,
} from '@tandem/node-manager';
import { v1, type Request, type RequestInit } from '@tandem/protocol';

const CONFIG = `
cluster: { name: demo, emergency: { action: exec, command: "true" }, rebootLimit: { max: 1, resetAfter: 1h } }
servers: [ { name: node1 }, { name: node2 } ]
groups:
  - name: web
    servers: [node1]
    resources:
      - { name: app, type: exec, mode: async, start: "sleep 100", timeout: 2s }
monitors:
  - { name: app-alive, type: pid, target: app }
`;

/** Polls a condition until it holds or the deadline passes. */
async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function setupHome(t: Tap.Test): { paths: Paths; ctx: DaemonContext } {
  const home = mkdtempSync(join(tmpdir(), 'tnd-nm-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  const paths = resolvePaths({ TANDEM_HOME: home, TANDEM_CONFIG: join(home, 'cluster.yaml') });
  writeFileSync(paths.config, CONFIG);
  const v = validateConfigText(CONFIG);
  if (!v.ok) throw new Error(v.problems.join('\n'));
  const log = createLogger({ daemon: 'nm', server: 'node1', logsDir: paths.logs, console: false });
  const events = new EventPublisher('node1', 'nm');
  t.teardown(() => events.close());
  const ctx: DaemonContext = {
    name: 'nm',
    server: 'node1',
    config: v.config,
    configPath: paths.config,
    paths,
    log,
    alerts: new AlertLog(paths.alerts, 'node1', 'nm'),
    events,
    ledger: new Ledger(paths.ledger),
    startedMs: Date.now(),
  };
  return { paths, ctx };
}

/** A stand-in daemon on its real socket path, answering ping and whatever `handle` serves. */
async function fakeDaemon(t: Tap.Test, ctx: DaemonContext, name: DaemonName, handle: RpcHandler): Promise<void> {
  const server = new RpcServer(
    ctx.paths.rpc(name),
    async (request) =>
      request.body === 'ping' ? { daemon: { name, pid: process.pid, state: 'running', startedMs: 1, rssKb: 1000 } } : handle(request),
    ctx.log,
  );
  await server.bind();
  t.teardown(() => server.close());
}

const request = (origin: string, body: Omit<RequestInit, 'id' | 'origin'>): Request => v1.Request.create({ id: 'test', origin, ...body });

t.test('a missing or silent daemon shows as unreachable and the rest of the status is still reported', async (t) => {
  const { ctx } = setupHome(t);
  await fakeDaemon(t, ctx, 'rc', async () => ({ groups: { groups: [{ name: 'web', state: 'online', server: 'node1' }] } }));
  await fakeDaemon(t, ctx, 'rm', async () => ({ monitors: { monitors: [{ name: 'app-alive', state: 'normal' }] } }));
  await fakeDaemon(t, ctx, 'guard', async () => ({ ack: {} }));
  // md is bound but never answers, not even ping; hb has no socket at all.
  const silent = new RpcServer(ctx.paths.rpc('md'), () => new Promise(() => undefined), ctx.log);
  await silent.bind();
  t.teardown(() => silent.close());
  const clients = Object.fromEntries(
    PEER_DAEMONS.map((d) => [d, new RpcClient(ctx.paths.rpc(d), { origin: 'tandem-nm', name: d })]),
  ) as Record<PeerDaemon, RpcClient>;
  t.teardown(() => Object.values(clients).forEach((c) => c.close()));
  const missing: string[] = [];
  const status = await gatherStatus(
    {
      cluster: 'demo',
      server: 'node1',
      state: 'online',
      servers: ['node1', 'node2'],
      self: { name: 'nm', pid: process.pid, state: 'running' },
    },
    clients,
    (part) => missing.push(part),
    300,
  );
  t.same(
    status.daemons?.map((d) => [d.name, d.state]),
    [
      ['nm', 'running'],
      ['hb', 'unreachable'],
      ['rc', 'running'],
      ['rm', 'running'],
      ['md', 'unreachable'],
      ['guard', 'running'],
    ],
  );
  t.same(
    status.groups?.map((g) => [g.name, g.state, g.server]),
    [['web', 'online', 'node1']],
  );
  t.same(
    status.monitors?.map((m) => [m.name, m.state]),
    [['app-alive', 'normal']],
  );
  t.same(
    status.servers?.map((s) => [s.name, s.state, s.local]),
    [
      ['node1', 'online', true],
      ['node2', 'unknown', false],
    ],
    'without hb the servers come from the configuration',
  );
  t.same(missing.sort(), ['hb ping', 'md ping', 'servers']);
});

t.test('the node manager drives rc and rm through startup, stop and start, and refuses what the state forbids', async (t) => {
  const { ctx } = setupHome(t);
  // node2 is configured, so the startup wait applies: keep it short.
  ctx.config.cluster.startupWaitMs = 200;
  const calls: string[] = [];
  const serve =
    (name: string): RpcHandler =>
    async (r) => {
      if (r.body === 'service') calls.push(`${name} ${v1.ServiceAction[r.service!.action]} ${v1.Cause[r.service!.cause]}`);
      else if (r.body === 'group')
        calls.push(`${name} group ${v1.GroupAction[r.group!.action]} ${r.group!.group} ${v1.Cause[r.group!.cause]}`);
      else if (r.body === 'status') return name === 'rc' ? { groups: { groups: [] } } : { monitors: { monitors: [] } };
      return { ack: { message: 'ok' } };
    };
  await fakeDaemon(t, ctx, 'rc', serve('rc'));
  await fakeDaemon(t, ctx, 'rm', serve('rm'));
  const nm = new NodeManager(ctx);
  t.teardown(() => nm.stop('test over'));

  await nm.startup();
  t.equal(nm.state, 'online');
  t.same(calls.sort(), ['rc SERVICE_ACTION_ACTIVATE CAUSE_STARTUP', 'rm SERVICE_ACTION_ACTIVATE CAUSE_STARTUP'].sort());
  t.ok(
    readAlerts(ctx.paths.alerts).some((a) => a.id === 'TND-NM-0001'),
    'TND-NM-0001 is in the alert log',
  );

  await t.rejects(nm.handle(request('cli', { group: { action: v1.GroupAction.GROUP_ACTION_START, group: 'shop' } })), {
    code: 'NOT_FOUND',
    message: 'no group named shop',
  });
  await t.rejects(
    nm.handle(request('cli', { resource: { action: v1.ResourceAction.RESOURCE_ACTION_STOP, group: 'web', resource: 'db' } })),
    { code: 'NOT_FOUND', message: 'no resource named db in group web' },
  );

  calls.length = 0;
  await nm.handle(request('cli', { group: { action: v1.GroupAction.GROUP_ACTION_STOP, group: 'web', cause: v1.Cause.CAUSE_MONITOR } }));
  await nm.handle(
    request('tandem-rm', { group: { action: v1.GroupAction.GROUP_ACTION_RESTART, group: 'web', cause: v1.Cause.CAUSE_MONITOR } }),
  );
  t.same(
    calls,
    ['rc group GROUP_ACTION_STOP web CAUSE_OPERATOR', 'rc group GROUP_ACTION_RESTART web CAUSE_MONITOR'],
    'only rm keeps its cause',
  );

  calls.length = 0;
  const stopped = await nm.handle(request('cli', { cluster: { action: v1.ClusterAction.CLUSTER_ACTION_STOP } }));
  t.equal(stopped.ack?.message, 'cluster service stopped');
  t.equal(nm.state, 'stopped');
  t.same(
    calls,
    ['rm SERVICE_ACTION_DEACTIVATE CAUSE_CLUSTER_STOP', 'rc SERVICE_ACTION_DEACTIVATE CAUSE_CLUSTER_STOP'],
    'monitors go off before groups stop',
  );

  await t.rejects(nm.handle(request('cli', { group: { action: v1.GroupAction.GROUP_ACTION_START, group: 'web' } })), {
    code: 'REFUSED',
    message: 'group web cannot start: cluster service is stopped',
  });
  await t.rejects(nm.handle(request('cli', { cluster: { action: v1.ClusterAction.CLUSTER_ACTION_STOP } })), {
    code: 'CONFLICT',
    message: 'cluster is already stopped',
  });

  calls.length = 0;
  await nm.handle(request('cli', { cluster: { action: v1.ClusterAction.CLUSTER_ACTION_START } }));
  t.equal(nm.state, 'online');
  t.same(calls.sort(), ['rc SERVICE_ACTION_ACTIVATE CAUSE_OPERATOR', 'rm SERVICE_ACTION_ACTIVATE CAUSE_OPERATOR'].sort());

  await nm.handle(request('cli', { cluster: { action: v1.ClusterAction.CLUSTER_ACTION_SUSPEND } }));
  t.equal(nm.state, 'suspended');
  await t.rejects(nm.handle(request('cli', { group: { action: v1.GroupAction.GROUP_ACTION_START, group: 'web' } })), {
    code: 'REFUSED',
    message: 'group web cannot start: cluster service is suspended',
  });
  const status = await nm.handle(request('cli', { status: {} }));
  t.equal(status.status?.state, 'suspended');
  t.same(
    status.status?.servers?.map((s) => [s.name, s.state]),
    [
      ['node1', 'suspended'],
      ['node2', 'unknown'],
    ],
  );
  t.same(
    readAlerts(ctx.paths.alerts).map((a) => a.id),
    ['TND-NM-0001', 'TND-NM-0002', 'TND-NM-0001', 'TND-NM-0003'],
  );
});

t.test('a reboot final action stops the cluster service and reboots only within the reboot limit', async (t) => {
  const { ctx } = setupHome(t);
  ctx.config.servers = ctx.config.servers.slice(0, 1);
  const calls: string[] = [];
  const serve =
    (name: string): RpcHandler =>
    async (r) => {
      if (r.body === 'service') calls.push(`${name} ${v1.ServiceAction[r.service!.action]}`);
      return { ack: {} };
    };
  await fakeDaemon(t, ctx, 'rc', serve('rc'));
  await fakeDaemon(t, ctx, 'rm', serve('rm'));
  const osActions: string[] = [];
  const nm = new NodeManager(ctx, {
    runOsAction: (action) => {
      osActions.push(action);
      return `recorded ${action}`;
    },
    exitFatal: () => t.fail('nm must not exit'),
  });
  t.teardown(() => nm.stop('test over'));
  await nm.startup();
  t.equal(nm.state, 'online');

  const reboot = request('tandem-rm', {
    finalAction: { action: 'stop-cluster-service-and-reboot', group: 'web', reason: 'app died', source: 'app-alive' },
  });
  const ack = await nm.handle(reboot);
  t.match(ack.ack?.message, /accepted/, 'the caller gets its answer before the action is done');
  const historyPath = rebootHistoryPath(ctx.paths.state);
  await until('the reboot to be counted', () => loadRebootHistory(historyPath).count === 1);
  t.equal(nm.state, 'stopped');
  t.same(calls.slice(-2), ['rm SERVICE_ACTION_DEACTIVATE', 'rc SERVICE_ACTION_DEACTIVATE']);
  t.same(osActions, ['reboot'], 'the reboot goes through the injected runner');

  await nm.handle(request('cli', { cluster: { action: v1.ClusterAction.CLUSTER_ACTION_START } }));
  await nm.handle(reboot);
  await until('the reboot limit alert', () => readAlerts(ctx.paths.alerts).some((a) => a.id === 'TND-NM-0011'));
  t.equal(nm.state, 'stopped', 'the server stays up with the cluster service stopped');
  t.equal(loadRebootHistory(historyPath).count, 1, 'the refused reboot is not counted');
  t.same(osActions, ['reboot'], 'the refused reboot is not run');
  t.equal(readAlerts(ctx.paths.alerts).filter((a) => a.id === 'TND-NM-0010').length, 2, 'every final action is an alert');

  await t.rejects(nm.handle(request('tandem-rm', { finalAction: { action: 'explode' } })), { code: 'BAD_REQUEST' });
  await t.rejects(nm.handle(request('tandem-rm', { finalAction: { action: 'stop-group', group: 'web' } })), {
    code: 'BAD_REQUEST',
    message:
      'unknown final action "stop-group" (tandem-nm does stop-cluster-service, stop-cluster-service-and-shutdown, stop-cluster-service-and-reboot, emergency)',
  });
});

/** A node manager on one server with recording rc and rm, started and online. */
async function onlineNm(
  t: Tap.Test,
  ctx: DaemonContext,
  rcHandle: RpcHandler = async () => ({ ack: {} }),
  opts: NodeManagerOptions = {},
): Promise<{ nm: NodeManager; calls: string[] }> {
  ctx.config.servers = ctx.config.servers.slice(0, 1);
  const calls: string[] = [];
  const record =
    (name: string, then: RpcHandler): RpcHandler =>
    async (r) => {
      if (r.body === 'service') calls.push(`${name} ${v1.ServiceAction[r.service!.action]}`);
      return then(r);
    };
  await fakeDaemon(t, ctx, 'rc', record('rc', rcHandle));
  await fakeDaemon(
    t,
    ctx,
    'rm',
    record('rm', async () => ({ ack: {} })),
  );
  const nm = new NodeManager(ctx, { runOsAction: () => t.fail('no OS action expected') as never, ...opts });
  t.teardown(() => nm.stop('test over'));
  await nm.startup();
  t.equal(nm.state, 'online');
  calls.length = 0;
  return { nm, calls };
}

t.test('a cluster stop that rc refuses leaves the service online with its monitors reactivated', async (t) => {
  const { ctx } = setupHome(t);
  const { nm, calls } = await onlineNm(t, ctx, async (r) => {
    if (r.body === 'service' && r.service!.action === v1.ServiceAction.SERVICE_ACTION_DEACTIVATE) {
      throw new TandemError('INTERNAL', 'group web did not stop');
    }
    return { ack: {} };
  });
  await t.rejects(nm.handle(request('cli', { cluster: { action: v1.ClusterAction.CLUSTER_ACTION_STOP } })), {
    code: 'INTERNAL',
    message: 'cluster stop failed: group web did not stop; monitors reactivated',
  });
  t.equal(nm.state, 'online');
  t.same(calls, ['rm SERVICE_ACTION_DEACTIVATE', 'rc SERVICE_ACTION_DEACTIVATE', 'rm SERVICE_ACTION_ACTIVATE']);
  await nm.handle(request('cli', { group: { action: v1.GroupAction.GROUP_ACTION_STOP, group: 'web' } }));
  t.pass('group commands are served again');
});

t.test('an emergency waits for a restarting guard and is handed over once it answers', async (t) => {
  const { ctx } = setupHome(t);
  ctx.config.cluster.stallLimitMs = 3000;
  let exits = 0;
  const { nm } = await onlineNm(t, ctx, undefined, { exitFatal: () => (exits += 1) });
  const ack = await nm.handle(request('tandem-rm', { finalAction: { action: 'emergency', reason: 'disk gone', source: 'disk-alive' } }));
  t.match(ack.ack?.message, /accepted/);
  // The guard is away for a while (restarting), then binds its socket.
  await sleep(500);
  const received: string[] = [];
  await fakeDaemon(t, ctx, 'guard', async (r) => {
    received.push(`${r.finalAction?.action} ${r.finalAction?.reason}`);
    return { ack: { message: 'emergency procedure started' } };
  });
  await until('the guard to get the emergency', () => received.length > 0);
  t.same(received, ['emergency disk gone'], 'handed over exactly once');
  t.equal(exits, 0, 'nm stays up');
});

t.test('an emergency the guard never answers is an alert and a crash-like exit, so the guard fences later', async (t) => {
  const { ctx } = setupHome(t);
  ctx.config.cluster.stallLimitMs = 800;
  let exits = 0;
  const { nm } = await onlineNm(t, ctx, undefined, { exitFatal: () => (exits += 1) });
  const started = Date.now();
  await nm.handle(request('tandem-rm', { finalAction: { action: 'emergency', reason: 'disk gone' } }));
  await until('nm to give up on the guard', () => exits > 0);
  const waited = Date.now() - started;
  t.ok(waited >= 800, `gave up only after the stall limit (${waited} ms)`);
  t.equal(exits, 1);
  const last = readAlerts(ctx.paths.alerts)
    .filter((a) => a.id === 'TND-NM-0013')
    .at(-1);
  t.match(
    last?.message,
    /^emergency could not reach tandem-guard in 800 ms \(\d+ attempts, last: .*\); tandem-nm exits so that the guard fences this server$/,
  );
});

t.test('an operator shutdown stops the cluster service, then the machine, outside the reboot limit', async (t) => {
  const { ctx } = setupHome(t);
  const osActions: string[] = [];
  const { nm, calls } = await onlineNm(t, ctx, async () => ({ ack: {} }), {
    runOsAction: (action) => {
      osActions.push(action);
      return `recorded ${action}`;
    },
  });
  const shutdown = { cluster: { action: v1.ClusterAction.CLUSTER_ACTION_SHUTDOWN, reboot: true } };
  const ack = await nm.handle(request('cli', shutdown));
  t.match(ack.ack?.message, /cluster service stopped, recorded reboot/);
  t.equal(nm.state, 'stopped');
  t.match(calls, ['rm SERVICE_ACTION_DEACTIVATE', 'rc SERVICE_ACTION_DEACTIVATE']);
  t.same(osActions, ['reboot']);
  t.equal(loadRebootHistory(rebootHistoryPath(ctx.paths.state)).count, 0, 'an operator shutdown is not counted');
});

t.test('node down and --node name servers of the configuration; node down needs another server', async (t) => {
  const { ctx } = setupHome(t);
  const { nm } = await onlineNm(t, ctx);
  await t.rejects(nm.handle(request('cli', { node: 'nowhere', status: {} })), { code: 'NOT_FOUND', message: 'no server named nowhere' });
  await t.rejects(nm.handle(request('cli', { nodeCommand: { action: v1.NodeAction.NODE_ACTION_DOWN, server: 'nowhere' } })), {
    code: 'NOT_FOUND',
  });
  await t.rejects(nm.handle(request('cli', { nodeCommand: { action: v1.NodeAction.NODE_ACTION_DOWN } })), {
    code: 'REFUSED',
    message: /one server/,
  });
  await t.rejects(nm.handle(request('cli', { nodeCommand: {} })), { code: 'BAD_REQUEST' });
  t.equal(nm.state, 'online', 'nothing changed');
});

t.test('the previous life: none, clean after an orderly stop, unclean after anything else', async (t) => {
  const { paths } = setupHome(t);
  mkdirSync(paths.state, { recursive: true });
  t.equal(previousLife(paths.state), 'none', 'a first start');
  markLife(paths.state, true);
  t.equal(previousLife(paths.state), 'unclean', 'running when the process went away: a crash, a fence, a power cut');
  markLife(paths.state, false);
  t.equal(previousLife(paths.state), 'clean');
  writeFileSync(lifePath(paths.state), 'garbage');
  t.equal(previousLife(paths.state), 'unclean', 'a record that cannot be read is not taken for a clean stop');
});

t.test('a life is marked running whenever the service comes online, also by tandem cluster start after a failed startup', async (t) => {
  const { ctx, paths } = setupHome(t);
  ctx.config.cluster.startupWaitMs = 200;
  let refuse = true;
  const serve: RpcHandler = async (r) => {
    if (r.body === 'service' && r.service!.action === v1.ServiceAction.SERVICE_ACTION_ACTIVATE && refuse) {
      throw new Error('a start script failed');
    }
    if (r.body === 'status') return { groups: { groups: [] } };
    return { ack: { message: 'ok' } };
  };
  await fakeDaemon(t, ctx, 'rc', serve);
  await fakeDaemon(t, ctx, 'rm', async (r) => (r.body === 'status' ? { monitors: { monitors: [] } } : { ack: { message: 'ok' } }));
  const nm = new NodeManager(ctx);
  let stopped = false;
  t.teardown(() => (stopped ? undefined : nm.stop('test over')));

  await nm.startup();
  t.equal(nm.state, 'stopped', 'the startup failed');
  t.equal(previousLife(paths.state), 'none', 'never online: nothing marked');
  refuse = false;
  await nm.handle(request('cli', { cluster: { action: v1.ClusterAction.CLUSTER_ACTION_START } }));
  t.equal(nm.state, 'online');
  t.equal(previousLife(paths.state), 'unclean', 'online now: a power cut from here on is an unclean end');
  await nm.stop('test over');
  stopped = true;
  t.equal(previousLife(paths.state), 'clean', 'an orderly stop marks the life clean');
});

t.test("a coordinator's orders are carried out when it is seen online or still starting, never otherwise", async (t) => {
  for (const state of ['online', 'starting']) t.ok(acceptsOrdersFrom(state), state);
  for (const state of ['offline', 'unknown', 'unreachable', 'isolated', 'suspended', 'stopped', undefined])
    t.notOk(acceptsOrdersFrom(state), String(state));
});
