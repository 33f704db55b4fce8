import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import {
  AlertLog,
  createLogger,
  EventPublisher,
  Ledger,
  readAlerts,
  resolvePaths,
  sleep,
  validateConfigText,
  type TandemError,
} from '@tandem/core';
import { decodeRequest, encodeRequest, tandem, type RequestInit } from '@tandem/protocol';
import { ResourceController, type FinalActionOrder } from '@tandem/resource-controller';

const { GroupAction, ResourceAction, ServiceAction, Cause } = tandem.v1;

/** An event publisher that also remembers what it published. */
class RecordingPublisher extends EventPublisher {
  readonly published: { kind: string; subject: string; state: string }[] = [];
  override publish(kind: string, subject: string, state: string, message = '', details: Record<string, string> = {}): void {
    this.published.push({ kind, subject, state });
    super.publish(kind, subject, state, message, details);
  }
}

interface Fixture {
  teardown(fn: () => unknown): void;
}

/** A controller on a temp TANDEM_HOME; `resources` is the YAML list of group web's resources (DIR = the temp dir). */
function setup(t: Fixture, resources: string, opts: { autoStart?: boolean } = {}) {
  // A temp dir of our own, removed after the teardown stopped what runs in it.
  const dir = mkdtempSync(join(tmpdir(), 'tnd-rc-'));
  const text = `
cluster: { name: demo, emergency: { action: exec, command: "true" } }
servers: [ { name: node1 } ]
groups:
  - name: web
    autoStart: ${opts.autoStart ?? false}
    resources:
${resources.replaceAll('DIR', dir)}
`;
  const v = validateConfigText(text);
  if (!v.ok) throw new Error(v.problems.join('\n'));
  const paths = resolvePaths({ TANDEM_HOME: dir });
  const log = createLogger({ daemon: 'rc', server: 'node1', logsDir: paths.logs, console: false });
  const events = new RecordingPublisher('node1', 'rc');
  const finalActions: FinalActionOrder[] = [];
  const controller = new ResourceController(
    {
      server: 'node1',
      config: v.config,
      paths,
      log,
      alerts: new AlertLog(paths.alerts, 'node1', 'rc'),
      events,
      ledger: new Ledger(paths.ledger),
    },
    { sendFinalAction: async (order) => void finalActions.push(order) },
  );
  t.teardown(async () => {
    await controller.stopAll('SERVERSHUTDOWN');
    events.close();
    log.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const call = async (body: Omit<RequestInit, 'id' | 'revision' | 'deadlineMs' | 'origin'>) => {
    const decoded = decodeRequest(encodeRequest({ id: 'test', ...body }));
    if (!decoded.ok) throw new Error(decoded.reason);
    return controller.handle(decoded.message);
  };
  const trace = (): string[] => (existsSync(join(dir, 'trace')) ? readFileSync(join(dir, 'trace'), 'utf8').trim().split('\n') : []);
  const clearTrace = (): void => writeFileSync(join(dir, 'trace'), '');
  const web = () => controller.status().find((g) => g.name === 'web')!;
  const alertIds = () => readAlerts(paths.alerts).map((a) => a.id);
  return { dir, controller, call, trace, clearTrace, web, events, finalActions, alertIds };
}

/** An exec resource whose scripts write "start NAME EVENT" and "stop NAME FACTOR EVENT" to DIR/trace. */
const traced = (name: string, extra = '') =>
  `      - { name: ${name}, type: exec, cwd: DIR, start: 'echo "start ${name} $TANDEM_EVENT" >> trace', stop: 'echo "stop ${name} $TANDEM_FACTOR $TANDEM_EVENT" >> trace'${extra ? `, ${extra}` : ''} }`;

const chain = [traced('app', 'dependsOn: [db]'), traced('db'), traced('report', 'dependsOn: [app]')].join('\n');

const activate = { service: { action: ServiceAction.SERVICE_ACTION_ACTIVATE, cause: Cause.CAUSE_STARTUP } };
const group = (action: number, cause = Cause.CAUSE_OPERATOR) => ({ group: { action, group: 'web', cause } });
const resource = (action: number, name: string, cause = Cause.CAUSE_OPERATOR) => ({
  resource: { action, group: 'web', resource: name, cause },
});

async function waitFor(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

t.test('resources start in dependency order and stop in reverse', async (t) => {
  const { call, trace, clearTrace, web, events, alertIds } = setup(t, chain);
  await call(activate);
  t.match(await call(group(GroupAction.GROUP_ACTION_START)), { ack: { message: 'group web is online on node1' } });
  t.same(trace(), ['start db START', 'start app START', 'start report START']);
  t.equal(web().state, 'online');
  t.equal(web().server, 'node1');
  clearTrace();
  await call(group(GroupAction.GROUP_ACTION_STOP));
  t.same(trace().filter(Boolean), ['stop report GROUPSTOP START', 'stop app GROUPSTOP START', 'stop db GROUPSTOP START']);
  t.equal(web().state, 'offline');
  t.equal(web().server, '');
  t.same(
    events.published.filter((e) => e.kind === 'group').map((e) => e.state),
    ['starting', 'online', 'stopping', 'offline'],
    'a group event for every state change',
  );
  t.ok(alertIds().includes('TND-RC-0101') && alertIds().includes('TND-RC-0102'), 'started and stopped alerts');
});

t.test('activation starts the auto-start groups, deactivation stops them with CLUSTERSHUTDOWN', async (t) => {
  const { call, trace, web, controller } = setup(t, chain, { autoStart: true });
  t.match(await call(activate), { ack: { message: /starting auto-start groups/ } });
  await waitFor('the startup to finish', () => web().state === 'online');
  t.same(trace(), ['start db START', 'start app START', 'start report START']);
  await call({ service: { action: ServiceAction.SERVICE_ACTION_DEACTIVATE, cause: Cause.CAUSE_CLUSTER_STOP } });
  t.equal(controller.service, 'stopped');
  t.equal(web().state, 'offline');
  t.same(trace().slice(-3), ['stop report CLUSTERSHUTDOWN START', 'stop app CLUSTERSHUTDOWN START', 'stop db CLUSTERSHUTDOWN START']);
  await t.rejects(call(group(GroupAction.GROUP_ACTION_START)), { code: 'REFUSED', message: /cluster service is stopped/ });
});

t.test('a resume after a suspend starts nothing and leaves the groups running', async (t) => {
  const { call, trace, clearTrace, web, controller } = setup(t, chain, { autoStart: true });
  await call(activate);
  await waitFor('the startup to finish', () => web().state === 'online');
  clearTrace();
  await call({ service: { action: ServiceAction.SERVICE_ACTION_SUSPEND } });
  t.equal(controller.service, 'suspended');
  t.match(await call({ service: { action: ServiceAction.SERVICE_ACTION_ACTIVATE, cause: Cause.CAUSE_OPERATOR } }), {
    ack: { message: 'cluster service active' },
  });
  t.same(trace().filter(Boolean), [], 'no script ran');
  t.equal(web().state, 'online');
});

t.test('a resource that keeps failing to start is retried, then held with its dependents left stopped', async (t) => {
  const failing = `      - { name: app, type: exec, cwd: DIR, dependsOn: [db], start: 'echo "start app" >> trace; exit 1', onStartFailure: { retries: 2, failovers: 1, finalAction: hold } }`;
  const { call, trace, web, alertIds } = setup(t, [traced('db'), failing, traced('report', 'dependsOn: [app]')].join('\n'));
  await call(activate);
  await t.rejects(call(group(GroupAction.GROUP_ACTION_START)), {
    code: 'UNAVAILABLE',
    message: 'group web did not start: resource app failed to start: start script exited with code 1',
  });
  t.same(trace(), ['start db START', 'start app', 'start app', 'start app'], 'one start and two retries, report never started');
  const status = Object.fromEntries(web().resources.map((r) => [r.name, [r.state, r.startFailures]]));
  t.same(status, { db: ['online', 0], app: ['start-failed', 3], report: ['offline', 0] });
  t.equal(web().state, 'partial');
  t.same(
    alertIds().filter((id) => id.startsWith('TND-RC')),
    ['TND-RC-0105', 'TND-RC-0105', 'TND-RC-0103', 'TND-RC-0106'],
  );
});

t.test('the final action continue starts the dependents of a failed resource anyway', async (t) => {
  const failing = `      - { name: app, type: exec, cwd: DIR, start: 'exit 1', onStartFailure: { finalAction: continue } }`;
  const { call, trace, web } = setup(t, [failing, traced('report', 'dependsOn: [app]')].join('\n'));
  await call(activate);
  await t.rejects(call(group(GroupAction.GROUP_ACTION_START)), { code: 'UNAVAILABLE' });
  t.same(trace(), ['start report START']);
  t.equal(web().state, 'partial');
});

t.test('a cluster-level final action is handed to the node manager', async (t) => {
  const failing = `      - { name: app, type: exec, cwd: DIR, start: 'exit 1', onStartFailure: { finalAction: stop-cluster-service } }`;
  const { call, finalActions } = setup(t, failing);
  await call(activate);
  await t.rejects(call(group(GroupAction.GROUP_ACTION_START)), { code: 'UNAVAILABLE' });
  t.match(finalActions, [{ action: 'stop-cluster-service', group: 'web', source: 'app', reason: /app failed to start/ }]);
});

t.test('restarting a resource restarts its dependents, and later stops see the recovery event', async (t) => {
  const { call, trace, clearTrace, web } = setup(t, chain);
  await call(activate);
  await call(group(GroupAction.GROUP_ACTION_START));
  clearTrace();
  await call(resource(ResourceAction.RESOURCE_ACTION_RESTART, 'app', Cause.CAUSE_MONITOR));
  t.same(trace().filter(Boolean), [
    'stop report RESOURCERESTART START',
    'stop app RESOURCERESTART START',
    'start app RECOVER',
    'start report RECOVER',
  ]);
  t.equal(web().state, 'online');
  clearTrace();
  await call(group(GroupAction.GROUP_ACTION_STOP));
  t.same(trace().filter(Boolean), ['stop report GROUPSTOP RECOVER', 'stop app GROUPSTOP RECOVER', 'stop db GROUPSTOP START']);
});

t.test('a group restart by the monitor stops everything, then starts it with RECOVER', async (t) => {
  const { call, trace, clearTrace } = setup(t, [traced('db'), traced('app', 'dependsOn: [db]')].join('\n'));
  await call(activate);
  await call(group(GroupAction.GROUP_ACTION_START));
  clearTrace();
  await call(group(GroupAction.GROUP_ACTION_RESTART, Cause.CAUSE_MONITOR));
  t.same(trace().filter(Boolean), ['stop app GROUPRESTART START', 'stop db GROUPRESTART START', 'start db RECOVER', 'start app RECOVER']);
});

t.test('a suspended cluster refuses commands, a busy group is a conflict, a failover on one server is refused', async (t) => {
  const waiting = `      - { name: db, type: exec, cwd: DIR, start: 'touch started; while [ ! -f go ]; do sleep 0.02; done' }`;
  const { call, dir, web } = setup(t, waiting);
  await call(activate);
  await call({ service: { action: ServiceAction.SERVICE_ACTION_SUSPEND } });
  await t.rejects(call(group(GroupAction.GROUP_ACTION_START)), { code: 'REFUSED', message: 'cluster is suspended' });
  const suspended = (await call(group(GroupAction.GROUP_ACTION_FAILOVER, Cause.CAUSE_MONITOR)).catch((err: unknown) => err)) as TandemError;
  t.match(suspended, { code: 'REFUSED', message: 'cluster is suspended' });
  t.same(suspended.details, {}, 'a refusal of a suspended cluster is not a NO_SERVER one');
  await t.rejects(call(resource(ResourceAction.RESOURCE_ACTION_RESTART, 'db', Cause.CAUSE_MONITOR)), {
    code: 'REFUSED',
    message: 'cluster is suspended',
  });
  await call(activate);

  const starting = call(group(GroupAction.GROUP_ACTION_START));
  await waitFor('the start script to run', () => existsSync(join(dir, 'started')));
  t.equal(web().state, 'starting');
  await t.rejects(call(group(GroupAction.GROUP_ACTION_STOP)), { code: 'CONFLICT', message: 'group web is starting' });
  writeFileSync(join(dir, 'go'), '');
  await starting;

  await t.rejects(call(group(GroupAction.GROUP_ACTION_FAILOVER, Cause.CAUSE_MONITOR)), {
    code: 'REFUSED',
    message: 'no server can host group web: no other server in its policy is online',
    details: { reason: 'NO_SERVER' },
  });
  await t.rejects(call(group(GroupAction.GROUP_ACTION_MOVE)), {
    code: 'REFUSED',
    message: 'no server can host group web: no other server in its policy is online',
    details: { reason: 'NO_SERVER' },
  });
  t.equal(web().state, 'online', 'a refused failover stops nothing');
});

t.test('unknown names and actions are clear errors', async (t) => {
  const { call } = setup(t, traced('db'));
  await call(activate);
  await t.rejects(call({ group: { action: GroupAction.GROUP_ACTION_START, group: 'shop' } }), {
    code: 'NOT_FOUND',
    message: 'no group named shop',
  });
  await t.rejects(call(resource(ResourceAction.RESOURCE_ACTION_START, 'nope')), {
    code: 'NOT_FOUND',
    message: 'no resource nope in group web',
  });
  await t.rejects(call({ group: { action: GroupAction.GROUP_ACTION_UNSPECIFIED, group: 'web' } }), { code: 'BAD_REQUEST' });
  await t.rejects(call({ group: { action: GroupAction.GROUP_ACTION_START, group: 'web', server: 'node7' } }), {
    code: 'NOT_FOUND',
    message: 'no server named node7',
  });
  await t.rejects(call({ ping: {} }), { code: 'BAD_REQUEST' });
});

t.test('status reports the process of an async resource, and that it died', async (t) => {
  const app = `      - { name: app, type: exec, cwd: DIR, mode: async, start: 'while [ ! -f go ]; do sleep 0.02; done; exit 5' }`;
  const { call, dir, web } = setup(t, app);
  await call(activate);
  await call(group(GroupAction.GROUP_ACTION_START));
  const before = web().resources[0]!;
  t.ok(before.pid > 0 && before.alive, 'pid reported and alive');
  writeFileSync(join(dir, 'go'), '');
  await waitFor('the process to die', () => web().resources[0]!.alive === false && web().resources[0]!.detail !== '');
  t.match(
    web().resources[0],
    { state: 'online', alive: false, detail: 'process exited with code 5' },
    'not restarted: the monitor decides',
  );
  t.match(await call({ status: {} }), { groups: { groups: [{ name: 'web', state: 'online' }] } });
});

t.test('a resource that will not stop is retried, then held: what it depends on stays running', async (t) => {
  const stuck = `      - { name: app, type: exec, cwd: DIR, dependsOn: [db], start: 'true', stop: 'echo "stop app" >> trace; exit 1', onStopFailure: { retries: 1, finalAction: hold } }`;
  const { call, trace, web, alertIds, finalActions } = setup(t, [traced('db'), stuck].join('\n'));
  await call(activate);
  await call(group(GroupAction.GROUP_ACTION_START));
  await t.rejects(call(group(GroupAction.GROUP_ACTION_STOP)), {
    code: 'UNAVAILABLE',
    message: 'group web did not stop: resource app failed to stop: stop script exited with code 1',
  });
  t.same(trace().slice(-2), ['stop app', 'stop app'], 'one stop and one retry; db never stopped');
  t.same(
    web().resources.map((r) => [r.name, r.state]),
    [
      ['db', 'online'],
      ['app', 'stop-failed'],
    ],
  );
  t.equal(web().state, 'failed');
  t.ok(alertIds().includes('TND-RC-0104'));
  t.same(finalActions, [], 'hold asks nothing of the node manager');
});

t.test('a stop failure with the final action emergency is handed to the node manager, continue stops the rest', async (t) => {
  const stuck = (name: string, action: string, dependsOn: string[]) =>
    `      - { name: ${name}, type: exec, cwd: DIR, dependsOn: [${dependsOn.join(', ')}], start: 'true', stop: 'exit 1', onStopFailure: { finalAction: ${action} } }`;
  const { call, trace, finalActions } = setup(
    t,
    [traced('db'), stuck('app', 'continue', ['db']), stuck('cache', 'emergency', [])].join('\n'),
  );
  await call(activate);
  await call(group(GroupAction.GROUP_ACTION_START));
  await t.rejects(call(group(GroupAction.GROUP_ACTION_STOP)), { code: 'UNAVAILABLE' });
  t.ok(trace().includes('stop db GROUPSTOP START'), 'continue: db stopped although app did not');
  t.match(finalActions, [{ action: 'emergency', group: 'web', source: 'cache' }]);
});
