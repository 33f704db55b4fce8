/**
 * The resource controller: the groups of this server and their resources, the cluster service
 * state as nm tells it (`service` requests), and the group and resource commands. Resources start
 * in dependency order and stop in reverse; start and stop failures go through retries, the
 * failover rung and the resource's final action. One operation runs per group at a time.
 */
import { join } from 'node:path';
import {
  RpcClient,
  SerialQueue,
  TandemError,
  groupOperationTimeoutMs,
  partitionDecisionMs,
  sleep,
  toTandemError,
  type DaemonContext,
  type GroupConfig,
  type ResourceConfig,
  type StartFinalAction,
  type StopFinalAction,
} from '@tandem/core';
import { tandem, type GroupStatus, type ReplyInit, type Request } from '@tandem/protocol';
import type { ResourceDriver } from './drivers/driver.js';
import { createDriver } from './drivers/index.js';
import { dependenciesOf, dependentsOf, startOrder } from './groups/dependencies.js';
import { groupState, type GroupOperation, type GroupState, type ResourceState } from './groups/states.js';
import { LastStartStore } from './last-start.js';
import {
  isDown,
  livePlacements,
  newlyOnline,
  orphans,
  plannerServers,
  provesItselfFree,
  settled,
  type Settling,
  type View,
} from './coordinator.js';
import { plan, type GroupPlacement, type Plan, type PlanAction, type PlanEvent } from './planner/index.js';
import {
  STOP_FACTORS,
  scriptEnv,
  startEventFor,
  startValues,
  type ScriptEvent,
  type ScriptTarget,
  type StartCause,
  type StopFactor,
} from './script-env.js';
import { commandRefusal, serviceTransition, type ServiceState, type ServiceVerb } from './service-state.js';

type ReplyBody = Omit<ReplyInit, 'id' | 'revision' | 'error'>;

/** What the controller uses of the daemon context (tests build one without runDaemon). */
export type ControllerContext = Pick<DaemonContext, 'server' | 'config' | 'paths' | 'log' | 'alerts' | 'events' | 'ledger'>;

export interface FinalActionOrder {
  action: string;
  group: string;
  reason: string;
  /** the resource that asked */
  source: string;
}

export interface ControllerOptions {
  /** Delivers a cluster-level final action to nm (default: a `final_action` request to nm's socket). */
  sendFinalAction?: (order: FinalActionOrder) => Promise<void>;
}

interface ResourceRuntime {
  config: ResourceConfig;
  driver: ResourceDriver;
  state: ResourceState;
  startFailures: number;
  detail: string;
}

interface GroupRuntime {
  config: GroupConfig;
  resources: Map<string, ResourceRuntime>;
  /** resource names in start order */
  order: string[];
  operation: GroupOperation | undefined;
  /** the operation in progress, to wait for */
  current: Promise<unknown> | undefined;
  started: boolean;
  published: GroupState;
  detail: string;
}

/** Resource types whose failure a start script sees as TANDEM_DISK=FAILURE. */
const DISK_TYPES: ReadonlySet<string> = new Set(['md', 'mount']);

const SERVICE_VERBS: Partial<Record<number, ServiceVerb>> = {
  [tandem.v1.ServiceAction.SERVICE_ACTION_ACTIVATE]: 'ACTIVATE',
  [tandem.v1.ServiceAction.SERVICE_ACTION_SUSPEND]: 'SUSPEND',
  [tandem.v1.ServiceAction.SERVICE_ACTION_DEACTIVATE]: 'DEACTIVATE',
  [tandem.v1.ServiceAction.SERVICE_ACTION_RECOVER]: 'RECOVER',
};
const GROUP_VERBS: Partial<Record<number, 'START' | 'STOP' | 'RESTART' | 'MOVE' | 'FAILOVER'>> = {
  [tandem.v1.GroupAction.GROUP_ACTION_START]: 'START',
  [tandem.v1.GroupAction.GROUP_ACTION_STOP]: 'STOP',
  [tandem.v1.GroupAction.GROUP_ACTION_RESTART]: 'RESTART',
  [tandem.v1.GroupAction.GROUP_ACTION_MOVE]: 'MOVE',
  [tandem.v1.GroupAction.GROUP_ACTION_FAILOVER]: 'FAILOVER',
};
const RESOURCE_VERBS: Partial<Record<number, 'START' | 'STOP' | 'RESTART'>> = {
  [tandem.v1.ResourceAction.RESOURCE_ACTION_START]: 'START',
  [tandem.v1.ResourceAction.RESOURCE_ACTION_STOP]: 'STOP',
  [tandem.v1.ResourceAction.RESOURCE_ACTION_RESTART]: 'RESTART',
};

function causeOf(cause: tandem.v1.Cause | null | undefined): StartCause {
  const name = tandem.v1.Cause[cause ?? 0] as string | undefined;
  return (name?.replace(/^CAUSE_/, '') ?? 'UNSPECIFIED') as StartCause;
}

/** How many times the coordinator sends a refused startup order in all (#startupPlacement). */
const STARTUP_TRIES = 5;
const ack = (message: string): ReplyBody => ({ ack: { message } });
const errorMessage = (err: unknown): string => toTandemError(err).message;

export class ResourceController {
  readonly #ctx: ControllerContext;
  readonly #groups = new Map<string, GroupRuntime>();
  readonly #lastStart: LastStartStore;
  readonly #sendFinalAction: (order: FinalActionOrder) => Promise<void>;
  #nm: RpcClient | undefined;
  #service: ServiceState = 'stopped';
  /** several servers: the cluster as nm sees it (undefined until nm tells it) */
  #view: View | undefined;
  /** where this coordinator's orders put groups, until the view shows it */
  readonly #settling = new Map<string, Settling & { untilMs: number }>();
  /** servers that went down whose groups this coordinator has placed: name@since */
  readonly #handledDown = new Set<string>();
  /** this controller planned the cluster's startup (or learned it was done) */
  #startupDone = false;
  /** when the cluster service became active here, for the startup wait of the coordinator */
  #activatedMs = 0;
  /**
   * Groups of the startup placement whose start order the receiving server refused (it did not see
   * this coordinator online or starting yet): placed again at `atMs`; `tries`: the placements made
   * so far, STARTUP_TRIES at most.
   */
  readonly #startupAgain = { groups: new Set<string>(), atMs: 0, tries: 0 };
  /** coordinator work runs one pass at a time; a pass asked for meanwhile runs after it */
  #reconciling: Promise<void> | undefined;
  /**
   * Every plan of this coordinator (its own passes, group commands, node down) is made and carried
   * out one after the other: a plan sees the outcome of the one before, never a group half-placed.
   */
  readonly #plans = new SerialQueue();
  /** the view of the last coordinator pass: which servers came online since */
  #coordinatedView: View | undefined;
  #reconcileAgain = false;
  /** the coordinator's next pass on a timer (#wakeAt): the end of a partition decision or of the startup wait */
  #wakeTimer: NodeJS.Timeout | undefined;
  #wakeAtMs = 0;
  /** server → its incarnation and groups in the last view (a restart changes the incarnation) */
  readonly #lives = new Map<string, { incarnation: number; state: string; groups: { group: string; state: string }[] }>();
  /** servers seen restarting (a new incarnation) with the groups their previous life reported, for the coordinator */
  readonly #restarted: { server: string; incarnation: number; groups: { group: string; state: string }[] }[] = [];
  /** group → failovers in a row this coordinator ordered for a start failure (the rung's limit), until the group comes online */
  readonly #failoversInARow = new Map<string, number>();

  constructor(ctx: ControllerContext, opts: ControllerOptions = {}) {
    this.#ctx = ctx;
    this.#lastStart = new LastStartStore(join(ctx.paths.state, 'rc-last-start.json'));
    this.#sendFinalAction = opts.sendFinalAction ?? ((order) => this.#finalActionToNodeManager(order));
    for (const config of ctx.config.groups) {
      const resources = new Map<string, ResourceRuntime>();
      for (const r of config.resources) {
        resources.set(r.name, { config: r, driver: createDriver(r, ctx), state: 'offline', startFailures: 0, detail: '' });
      }
      this.#groups.set(config.name, {
        config,
        resources,
        order: startOrder(config.resources),
        operation: undefined,
        current: undefined,
        started: false,
        published: 'offline',
        detail: '',
      });
    }
  }

  get service(): ServiceState {
    return this.#service;
  }

  /** Answers one request; anything that goes wrong is thrown as a TandemError. */
  async handle(request: Request): Promise<ReplyBody> {
    switch (request.body) {
      case 'status':
        return { groups: { groups: this.status(), startupDone: this.#startupDone } };
      case 'view':
        return this.#onView(request.view ?? {});
      case 'order':
        return this.#onOrder(request.order ?? {});
      case 'nodeCommand':
        return this.#plans.run(() => this.#onNodeDown(request.nodeCommand ?? {}));
      case 'service':
        return this.#onService(request.service ?? {});
      case 'group':
        return this.#onGroup(request.group ?? {});
      case 'resource':
        return this.#onResource(request.resource ?? {});
      default:
        throw new TandemError('BAD_REQUEST', `rc does not serve ${request.body ?? 'empty'} requests`);
    }
  }

  status(): GroupStatus[] {
    return [...this.#groups.values()].map((g) => {
      const state = this.#state(g);
      return tandem.v1.GroupStatus.create({
        name: g.config.name,
        state,
        server: state === 'offline' ? '' : this.#ctx.server,
        autoStart: g.config.autoStart,
        detail: g.detail,
        resources: [...g.resources.values()].map((r) => {
          const s = r.driver.status();
          return {
            name: r.config.name,
            type: r.config.type,
            state: r.state,
            detail: r.detail || s.detail,
            pid: s.pid,
            alive: s.alive,
            startFailures: r.startFailures,
          };
        }),
      });
    });
  }

  /** Stops every group (after the operation each may be running); resolves when all are done. */
  async stopAll(factor: StopFactor): Promise<string[]> {
    await Promise.all(
      [...this.#groups.values()].map(async (g) => {
        while (g.current) await g.current.catch(() => undefined);
        if (this.#state(g) === 'offline') return;
        await this.#operate(g, 'stopping', () => this.#stop(g, factor)).catch((err: unknown) => {
          this.#ctx.log.error(`group ${g.config.name} did not stop: ${errorMessage(err)}`, { group: g.config.name });
        });
      }),
    );
    return [...this.#groups.values()].filter((g) => this.#state(g) !== 'offline').map((g) => `${g.config.name} is ${this.#state(g)}`);
  }

  /** The daemon's orderly stop: every group stops as for a server shutdown. */
  async shutdown(reason: string): Promise<void> {
    this.#ctx.log.info(`stopping every group: ${reason}`);
    const left = await this.stopAll('SERVERSHUTDOWN');
    if (left.length > 0) this.#ctx.log.error(`groups left running at shutdown: ${left.join(', ')}`);
    this.#setService('stopped');
    clearTimeout(this.#wakeTimer);
    this.#nm?.close();
  }

  get #multi(): boolean {
    return this.#ctx.config.servers.length > 1;
  }

  // --- requests -------------------------------------------------------------------------------

  async #onService(cmd: tandem.v1.ServiceCommand.$Properties): Promise<ReplyBody> {
    const verb = SERVICE_VERBS[cmd.action ?? 0];
    if (!verb) throw new TandemError('BAD_REQUEST', 'service command without a known action');
    const transition = serviceTransition(this.#service, verb);
    if ('refused' in transition) throw new TandemError('REFUSED', transition.refused);
    const from = this.#service;
    this.#setService(transition.to);
    switch (transition.effect) {
      case 'start-auto-groups':
        if (this.#multi) {
          // Several servers: the coordinator places the groups once every server has said what it runs.
          this.#activatedMs = Date.now();
          this.#reconcile();
          return ack('cluster service active: the coordinator places the auto-start groups');
        }
        // Startup may take as long as the slowest start script: answer now, report through events and status.
        void this.#startup().catch((err: unknown) => this.#ctx.log.error(`startup failed: ${errorMessage(err)}`));
        return ack('cluster service active: starting auto-start groups');
      case 'stop-all-groups': {
        const left = await this.stopAll('CLUSTERSHUTDOWN');
        return ack(
          left.length > 0 ? `cluster service stopped; not offline: ${left.join(', ')}` : 'cluster service stopped: every group is offline',
        );
      }
      case 'recover-returned':
        return ack(await this.#recoverReturned());
      case 'none':
        return ack(from === transition.to ? `cluster service already ${from}` : `cluster service ${transition.to}`);
    }
  }

  /**
   * A server returning to the cluster after going down without a clean stop (a power cut, a
   * fence): the groups it held then (started here, never stopped) run their start scripts with
   * TANDEM_EVENT=RECOVER, for local recovery only, in start order; nothing stays online. Async
   * resources (whose command is the application) and floating IPs have no such run. The
   * reference's "cluster return" (docs/architecture.md, "Script environment").
   */
  async #recoverReturned(): Promise<string> {
    const held = new Set(this.#lastStart.groups());
    const done: string[] = [];
    for (const g of [...this.#groups.values()].filter((x) => held.has(x.config.name))) {
      const name = g.config.name;
      const values = startValues('RECOVER', this.#ctx.server, g.config.servers, false);
      for (const resource of g.order) {
        const r = g.resources.get(resource)!;
        const ids = { group: name, resource };
        if (!r.driver.recover || (r.config.type === 'exec' && r.config.mode === 'async')) continue;
        try {
          await r.driver.recover(scriptEnv(this.#target(g, r), { phase: 'start', values }));
          done.push(`${name}/${resource}`);
        } catch (err) {
          this.#ctx.alerts.raise('TND-RC-0108', `resource ${resource} of group ${name}: recovery failed: ${errorMessage(err)}`, ids);
          this.#ctx.log.warn(`resource ${resource}: recovery failed: ${errorMessage(err)}`, ids);
          done.push(`${name}/${resource} (failed)`);
        }
      }
      this.#lastStart.forget(name);
    }
    // Groups the configuration no longer has: nothing to run, nothing to keep.
    for (const name of held) if (!this.#groups.has(name)) this.#lastStart.forget(name);
    const line = done.length > 0 ? `recovered: ${done.join(', ')}` : 'nothing to recover';
    this.#ctx.log.info(`returning to the cluster: ${line}`);
    return line;
  }

  async #onGroup(cmd: tandem.v1.GroupCommand.$Properties): Promise<ReplyBody> {
    const verb = GROUP_VERBS[cmd.action ?? 0];
    if (!verb) throw new TandemError('BAD_REQUEST', 'group command without a known action');
    const g = this.#group(cmd.group ?? '');
    const name = g.config.name;
    const cause = causeOf(cmd.cause);
    const server = cmd.server ?? '';
    if (this.#multi) return this.#plans.run(() => this.#onClusterGroup(g, verb, server, cause, cmd.failoverLimit ?? 0));
    this.#admit(g, verb !== 'STOP');
    switch (verb) {
      case 'START': {
        this.#knownServer(server);
        if (server && server !== this.#ctx.server) throw this.#remoteRefusal(name, 'start', server);
        const problem = this.#planProblem(this.#plan({ kind: 'start', group: name, ...(server ? { server } : {}) }));
        if (problem) throw problem;
        await this.#operate(g, 'starting', () => this.#start(g, startEventFor(cause)));
        return this.#outcome(g, 'online', 'start');
      }
      case 'STOP':
        if (this.#state(g) === 'offline') return ack(`group ${name} is already offline`);
        await this.#operate(g, 'stopping', () => this.#stop(g, 'GROUPSTOP'));
        return this.#outcome(g, 'offline', 'stop');
      case 'RESTART':
        await this.#operate(g, 'stopping', async () => {
          if (await this.#stop(g, 'GROUPRESTART')) await this.#start(g, startEventFor(cause));
        });
        return this.#outcome(g, 'online', 'restart');
      case 'MOVE':
      case 'FAILOVER': {
        this.#knownServer(server);
        const event: PlanEvent =
          verb === 'MOVE'
            ? { kind: 'move', group: name, ...(server ? { server } : {}) }
            : { kind: 'failover', group: name, from: this.#ctx.server };
        // A move or a failover always puts the group on another server: this controller can only say why not.
        throw (
          this.#planProblem(this.#plan(event)) ??
          new TandemError('INTERNAL', `the planner kept group ${name} on ${this.#ctx.server} for ${verb}`)
        );
      }
    }
  }

  async #onResource(cmd: tandem.v1.ResourceCommand.$Properties): Promise<ReplyBody> {
    const verb = RESOURCE_VERBS[cmd.action ?? 0];
    if (!verb) throw new TandemError('BAD_REQUEST', 'resource command without a known action');
    const { g, r } = this.#resource(cmd.group ?? '', cmd.resource ?? '');
    const name = r.config.name;
    const event = startEventFor(causeOf(cmd.cause));
    this.#admit(g, verb !== 'STOP');
    const resources = g.config.resources;
    // The resource and everything that depends on it, in start order.
    const affected = new Set([name, ...dependentsOf(resources, name)]);
    const startList = g.order.filter((n) => affected.has(n));
    const stopList = [...startList].reverse();
    switch (verb) {
      case 'START': {
        if (r.state === 'online') return ack(`resource ${name} is already online`);
        const missing = r.config.dependsOn.filter((d) => g.resources.get(d)?.state !== 'online');
        if (missing.length > 0) throw new TandemError('REFUSED', `resource ${name} depends on ${missing.join(', ')}, which is not online`);
        await this.#operate(g, 'starting', () => this.#startResources(g, [name], event));
        break;
      }
      case 'STOP':
        await this.#operate(g, 'stopping', () => this.#stopResources(g, stopList, 'RESOURCESTOP'));
        break;
      case 'RESTART':
        await this.#operate(g, 'stopping', async () => {
          if (await this.#stopResources(g, stopList, 'RESOURCERESTART')) await this.#startResources(g, startList, event);
        });
        break;
    }
    const want: ResourceState = verb === 'STOP' ? 'offline' : 'online';
    if (r.state !== want)
      throw new TandemError('UNAVAILABLE', `resource ${name} did not ${verb.toLowerCase()}: ${r.detail || `it is ${r.state}`}`);
    return ack(`resource ${name} is ${r.state}`);
  }

  // --- several servers: the coordinator -------------------------------------------------------

  /** nm's cluster view (several servers): remembered, and acted on when this server is the coordinator. */
  #onView(v: tandem.v1.ClusterView.$Properties): ReplyBody {
    if (!this.#multi) throw new TandemError('BAD_REQUEST', 'a cluster view is for a configuration of several servers');
    const names = this.#ctx.config.servers.map((s) => s.name);
    const servers = (v.servers ?? []).map((s) => ({
      name: s.name ?? '',
      state: s.state ?? '',
      incarnation: Number(s.incarnation ?? 0),
      sinceMs: Number(s.sinceMs ?? 0),
      groups: (s.groups ?? []).map((g) => ({ group: g.group ?? '', state: g.state ?? '' })),
      local: s.local ?? false,
    }));
    if (servers.map((s) => s.name).join() !== names.join()) {
      throw new TandemError(
        'BAD_REQUEST',
        `the cluster view names servers ${servers.map((s) => s.name).join(', ')}, not ${names.join(', ')}`,
      );
    }
    this.#view = { servers, coordinator: v.coordinator ?? '', startupDone: v.startupDone ?? false };
    if (this.#view.startupDone) this.#startupDone = true;
    for (const s of servers) {
      const before = this.#lives.get(s.name);
      // A group that came online has started: its start-failure failovers in a row are over.
      for (const g of s.groups) {
        if (g.state === 'online' && !before?.groups.some((b) => b.group === g.group && b.state === 'online'))
          this.#failoversInARow.delete(g.group);
      }
      this.#lives.set(s.name, { incarnation: s.incarnation, state: s.state, groups: s.groups });
      // Seen down first, its groups are the server-down pass's (below, in #coordinate).
      if (s.local || !before || isDown(before.state) || before.incarnation === 0 || s.incarnation === 0) continue;
      if (s.incarnation !== before.incarnation && before.groups.length > 0) {
        this.#restarted.push({ server: s.name, incarnation: before.incarnation, groups: before.groups });
      }
    }
    // A restart seen while another server coordinates is that server's to handle.
    if (this.#view.coordinator && this.#view.coordinator !== this.#ctx.server) this.#restarted.length = 0;
    this.#reconcile();
    return ack(`view taken: coordinator ${this.#view.coordinator || 'none'}`);
  }

  /** One step of the coordinator's plan, to run here. */
  async #onOrder(o: tandem.v1.GroupOrder.$Properties): Promise<ReplyBody> {
    if (!this.#multi) throw new TandemError('BAD_REQUEST', 'orders are for a configuration of several servers');
    const g = this.#group(o.group ?? '');
    const name = g.config.name;
    if (o.server !== this.#ctx.server) throw new TandemError('BAD_REQUEST', `order for ${o.server || '""'} sent to ${this.#ctx.server}`);
    if (o.action === tandem.v1.GroupAction.GROUP_ACTION_START) {
      const event = o.event === 'FAILOVER' ? 'FAILOVER' : o.event === 'START' ? 'START' : undefined;
      if (!event) throw new TandemError('BAD_REQUEST', `start order for group ${name} without a valid event (${o.event || '""'})`);
      const fenceWaitMs = o.fenceWaitMs ?? 0;
      // The coordinator's order times out after the group's operation time: a longer wait is no fence grace.
      if (fenceWaitMs >= groupOperationTimeoutMs(g.config)) {
        throw new TandemError(
          'BAD_REQUEST',
          `start order for group ${name} with a fence wait of ${fenceWaitMs} ms, longer than the whole operation may take`,
        );
      }
      if (this.#state(g) === 'online') return ack(`group ${name} is already online on ${this.#ctx.server}`);
      this.#admit(g, true);
      const fenceUntilMs = Date.now() + fenceWaitMs;
      await this.#operate(g, 'starting', () => this.#start(g, event, fenceUntilMs));
      return this.#outcome(g, 'online', 'start');
    }
    if (o.action === tandem.v1.GroupAction.GROUP_ACTION_STOP) {
      const factor = STOP_FACTORS.find((f) => f === o.factor);
      if (!factor) throw new TandemError('BAD_REQUEST', `stop order for group ${name} without a valid factor (${o.factor || '""'})`);
      if (this.#state(g) === 'offline') return ack(`group ${name} is already offline`);
      this.#admit(g, false);
      await this.#operate(g, 'stopping', () => this.#stop(g, factor));
      return this.#outcome(g, 'offline', 'stop');
    }
    throw new TandemError('BAD_REQUEST', `order for group ${name} without a start or stop action`);
  }

  /** A group command on the coordinator: planned with the whole cluster, carried out here and through orders. */
  async #onClusterGroup(
    g: GroupRuntime,
    verb: 'START' | 'STOP' | 'RESTART' | 'MOVE' | 'FAILOVER',
    server: string,
    cause: StartCause,
    failoverLimit: number,
  ) {
    const name = g.config.name;
    this.#knownServer(server);
    const refusal = commandRefusal(this.#service, verb !== 'STOP');
    if (refusal) throw new TandemError('REFUSED', refusal);
    const view = this.#view;
    if (!view || view.coordinator !== this.#ctx.server) {
      throw new TandemError(
        'UNAVAILABLE',
        `group ${name}: ${this.#ctx.server} is not the coordinator (${view?.coordinator || 'none yet'})`,
      );
    }
    const here = livePlacements(view, this.#localPlacements(), this.#settlingNow()).find((p) => p.group === name);
    let event: PlanEvent;
    switch (verb) {
      case 'START':
        event = { kind: 'start', group: name, ...(server ? { server } : {}) };
        break;
      case 'STOP':
        if (!here) return ack(`group ${name} is already offline`);
        event = { kind: 'stop', group: name };
        break;
      case 'MOVE':
        event = { kind: 'move', group: name, ...(server ? { server } : {}) };
        break;
      case 'FAILOVER': {
        if (!here) throw new TandemError('REFUSED', `group ${name} is offline: nothing to fail over (start it instead)`);
        const limit = failoverLimit > 0 ? failoverLimit : undefined;
        event = { kind: 'failover', group: name, from: here.server, ...(limit !== undefined ? { limit } : {}) };
        break;
      }
      case 'RESTART': {
        if (!here) throw new TandemError('REFUSED', `group ${name} is offline: nothing to restart (start it instead)`);
        const steps: PlanAction[] = [
          { kind: 'stop', group: name, server: here.server, factor: 'GROUPRESTART' },
          { kind: 'start', group: name, server: here.server, event: 'START' },
        ];
        return ack(await this.#execute({ actions: steps, refusals: [] }, cause));
      }
    }
    const p = this.#clusterPlan(event);
    const problem = p.refusals[0];
    if (problem) throw new TandemError('REFUSED', problem.reason, problem.code ? { reason: problem.code } : {});
    // Failovers in a row count for the start-failure rung's limit; a group that comes online (#onView)
    // or an operator's command starts the count again.
    if (cause === 'FAILOVER' && verb === 'FAILOVER') this.#failoversInARow.set(name, (this.#failoversInARow.get(name) ?? 0) + 1);
    else if (cause === 'OPERATOR') this.#failoversInARow.delete(name);
    return ack(await this.#execute(p, cause));
  }

  /** `tandem node down`, on the coordinator: the server's groups stop there (SERVERSHUTDOWN) and start elsewhere. */
  async #onNodeDown(cmd: tandem.v1.NodeCommand.$Properties): Promise<ReplyBody> {
    if (!this.#multi) throw new TandemError('BAD_REQUEST', 'node down is for a configuration of several servers');
    if (cmd.action !== tandem.v1.NodeAction.NODE_ACTION_DOWN) {
      throw new TandemError('BAD_REQUEST', `rc carries out node down only, not node action ${cmd.action ?? 0}`);
    }
    const server = cmd.server ?? '';
    this.#knownServer(server);
    if (!server) throw new TandemError('BAD_REQUEST', 'node down without a server');
    const view = this.#view;
    if (!view || view.coordinator !== this.#ctx.server) {
      throw new TandemError(
        'UNAVAILABLE',
        `node ${server}: ${this.#ctx.server} is not the coordinator (${view?.coordinator || 'none yet'})`,
      );
    }
    const p = this.#clusterPlan({ kind: 'server-shutdown', server });
    for (const r of p.refusals) this.#ctx.log.warn(`node ${server} down: ${r.reason}`, { group: r.group });
    const done = await this.#execute(p, 'FAILOVER');
    const refused = p.refusals.map((r) => r.reason);
    return ack([done, ...refused].join('; '));
  }

  #localPlacements(): GroupPlacement[] {
    return [...this.#groups.values()].map((g) => {
      const state = this.#state(g);
      return { group: g.config.name, state, server: state === 'offline' ? '' : this.#ctx.server };
    });
  }

  /** The orders still settling (their result not yet in the view); older ones are forgotten. */
  #settlingNow(): Map<string, Settling> {
    const now = Date.now();
    for (const [group, s] of this.#settling) if (s.untilMs < now) this.#settling.delete(group);
    return this.#settling;
  }

  #clusterPlan(event: PlanEvent, startup = false, extra: GroupPlacement[] = []): Plan {
    const view = this.#view!;
    const placement = [...livePlacements(view, this.#localPlacements(), this.#settlingNow()), ...extra].map((p) => ({
      ...p,
      failovers: this.#failoversInARow.get(p.group) ?? 0,
    }));
    return plan({ groups: this.#ctx.config.groups, servers: plannerServers(view, startup), placement, event });
  }

  /**
   * Carries out a plan in order: steps on this server directly, the others as orders through nm.
   * A group whose stop failed is not started elsewhere. `fenceUntilMs`: the fence grace of the
   * server the groups failed over from ends then (#startResources). Returns one line of what
   * happened; throws when a step failed.
   */
  async #execute(p: Plan, cause: StartCause, fenceUntilMs = 0, refused?: (a: PlanAction) => void): Promise<string> {
    const done: string[] = [];
    const failed: string[] = [];
    const stopFailed = new Set<string>();
    const settleMs = 3 * this.#ctx.config.cluster.heartbeat.intervalMs + 1000;
    for (const a of p.actions) {
      if (a.kind === 'start' && stopFailed.has(a.group)) {
        failed.push(`group ${a.group} not started on ${a.server}: it did not stop`);
        continue;
      }
      const what = `${a.kind} ${a.group} on ${a.server}`;
      this.#settling.set(a.group, { server: a.server, state: a.kind === 'start' ? 'starting' : 'stopping', untilMs: Infinity });
      try {
        if (a.server === this.#ctx.server) await this.#runHere(a, cause, fenceUntilMs);
        else await this.#orderTo(a, fenceUntilMs);
        this.#settling.set(a.group, { server: a.server, state: a.kind === 'start' ? 'online' : 'offline', untilMs: Date.now() + settleMs });
        done.push(what);
      } catch (err) {
        this.#settling.delete(a.group);
        if (a.kind === 'stop') stopFailed.add(a.group);
        // A refused order was not carried out (the other server's node manager refused it, or its
        // rc, whose cluster service is stopped or suspended); a start that ran and failed reports
        // another code.
        if (a.server !== this.#ctx.server && err instanceof TandemError && err.code === 'REFUSED') refused?.(a);
        failed.push(`${what}: ${errorMessage(err)}`);
        this.#ctx.log.error(`plan step failed: ${what}: ${errorMessage(err)}`, { group: a.group, server: a.server });
      }
    }
    if (failed.length > 0) throw new TandemError('UNAVAILABLE', failed.join('; '));
    return done.length > 0 ? `done: ${done.join(', ')}` : 'nothing to do';
  }

  async #runHere(a: PlanAction, cause: StartCause, fenceUntilMs: number): Promise<void> {
    const g = this.#group(a.group);
    if (a.kind === 'start') {
      if (this.#state(g) === 'online') return;
      this.#admit(g, true);
      // An operator's start on the coordinator keeps its cause (RECOVER for the monitor's); the planner's FAILOVER wins.
      const event = a.event === 'FAILOVER' ? 'FAILOVER' : startEventFor(cause);
      await this.#operate(g, 'starting', () => this.#start(g, event, fenceUntilMs));
      this.#outcome(g, 'online', 'start');
    } else {
      if (this.#state(g) === 'offline') return;
      this.#admit(g, false);
      await this.#operate(g, 'stopping', () => this.#stop(g, a.factor));
      this.#outcome(g, 'offline', 'stop');
    }
  }

  async #orderTo(a: PlanAction, fenceUntilMs: number): Promise<void> {
    // Relative: the clocks of the servers may differ. Counted from now, it ends no earlier there.
    const fenceWaitMs = Math.max(0, Math.ceil(fenceUntilMs - Date.now()));
    const order: tandem.v1.GroupOrder.$Properties = {
      server: a.server,
      group: a.group,
      coordinator: this.#ctx.server,
      ...(a.kind === 'start'
        ? { action: tandem.v1.GroupAction.GROUP_ACTION_START, event: a.event, fenceWaitMs }
        : { action: tandem.v1.GroupAction.GROUP_ACTION_STOP, factor: a.factor }),
    };
    const g = this.#group(a.group);
    await this.#nodeManager().call({ order }, { timeoutMs: groupOperationTimeoutMs(g.config) });
  }

  /**
   * The coordinator's own work, one pass at a time: the startup placement once every server has
   * said what it runs (or the startup wait is over), the groups of servers that went down once
   * their partition decision time has passed (their resources then wait for the rest of the fence
   * grace), and failback to servers that came online.
   */
  #reconcile(): void {
    if (this.#reconciling) {
      this.#reconcileAgain = true;
      return;
    }
    this.#reconciling = this.#plans
      .run(() => this.#coordinate())
      .catch((err: unknown) => void this.#ctx.log.error(`coordinator: ${errorMessage(err)}`))
      .finally(() => {
        this.#reconciling = undefined;
        if (this.#reconcileAgain) {
          this.#reconcileAgain = false;
          this.#reconcile();
        }
      });
  }

  async #coordinate(): Promise<void> {
    const view = this.#view;
    // Restarts seen while this server's service is not active are not its to act on (later, they
    // would move groups of lives long gone).
    if (!view || this.#service !== 'active') {
      this.#restarted.length = 0;
      this.#notPlaced([...this.#startupAgain.groups], 'the cluster service stopped here before its start order was sent again');
      return;
    }
    // Servers that came online since the last pass; at the first pass, this one (it just joined).
    const before = this.#coordinatedView;
    this.#coordinatedView = view;
    const cameOnline = before ? newlyOnline(before, view) : [this.#ctx.server];
    if (view.coordinator !== this.#ctx.server) {
      // The new coordinator takes the startup as done (the view says so): it does not know of these.
      const now = view.coordinator ? `${view.coordinator} coordinates now` : 'no server coordinates now';
      this.#notPlaced([...this.#startupAgain.groups], `its start order was refused, and ${now}`);
      return;
    }
    const { startupWaitMs, networkPartition } = this.#ctx.config.cluster;
    // The server that went down decides its side of the split, then has the fence grace to release
    // everything: a plan starts once the decision time is over, its resources once the grace is
    // (a floating IP that checks for a duplicate may start before: #startResources).
    const decisionMs = partitionDecisionMs(this.#ctx.config.cluster);
    const graceMs = networkPartition.fenceGraceMs + decisionMs;
    if (!this.#startupDone) {
      const waitOver = Date.now() >= this.#activatedMs + startupWaitMs;
      if (!settled(view) && !waitOver) {
        this.#wakeAt(this.#activatedMs + startupWaitMs);
        return;
      }
      this.#startupDone = true;
      await this.#startupPlacement(this.#clusterPlan({ kind: 'startup', startupWaitOver: waitOver }, true), 'startup');
    } else if (this.#startupAgain.groups.size > 0) {
      if (Date.now() < this.#startupAgain.atMs) this.#wakeAt(this.#startupAgain.atMs);
      else {
        // Placed as at the end of the startup wait, where the planner would put them now.
        const groups = [...this.#startupAgain.groups];
        this.#startupAgain.groups.clear();
        const p = this.#clusterPlan({ kind: 'startup', startupWaitOver: true, groups }, true);
        await this.#startupPlacement(p, `startup, again (${this.#startupAgain.tries})`);
      }
    }
    // A server that restarted faster than the heartbeat timeout was never seen down: the groups
    // its previous life reported died with it (its emergency, or the power cut) and go elsewhere.
    for (const { server, incarnation, groups } of this.#restarted.splice(0)) {
      const held = new Set(livePlacements(view, this.#localPlacements(), this.#settlingNow()).map((p) => p.group));
      const lost = groups.filter((g) => !held.has(g.group)).map((g) => ({ group: g.group, state: g.state, server }));
      if (lost.length === 0) continue;
      const p = this.#clusterPlan({ kind: 'server-down', server }, false, lost);
      for (const r of p.refusals) this.#ctx.log.warn(`${server} restarted: ${r.reason}`, { group: r.group });
      await this.#executeLogged(p, 'FAILOVER', `${server} restarted (its incarnation ${incarnation} is gone)`);
    }
    for (const dead of view.servers.filter((s) => !s.local && isDown(s.state))) {
      const key = `${dead.name}@${dead.sinceMs}`;
      if (this.#handledDown.has(key)) continue;
      const lost = orphans(view, dead, livePlacements(view, this.#localPlacements(), this.#settlingNow()));
      if (lost.length === 0) continue;
      const decided = dead.sinceMs + decisionMs;
      if (Date.now() < decided) {
        this.#wakeAt(decided);
        continue;
      }
      this.#handledDown.add(key);
      const p = this.#clusterPlan({ kind: 'server-down', server: dead.name }, false, lost);
      for (const r of p.refusals) this.#ctx.log.warn(`${dead.name} down: ${r.reason}`, { group: r.group });
      for (const a of p.actions) {
        if (a.kind === 'start') {
          this.#ctx.alerts.raise('TND-RC-0107', `group ${a.group} fails over from ${dead.name} (down) to ${a.server}`, {
            group: a.group,
            from: dead.name,
            to: a.server,
          });
        }
      }
      await this.#executeLogged(p, 'FAILOVER', `${dead.name} down`, dead.sinceMs + graceMs);
    }
    for (const server of cameOnline) {
      await this.#executeLogged(this.#clusterPlan({ kind: 'server-up', server }), 'OPERATOR', `${server} online`);
    }
  }

  async #executeLogged(p: Plan, cause: StartCause, why: string, fenceUntilMs = 0, refused?: (a: PlanAction) => void): Promise<void> {
    if (p.actions.length === 0) return;
    try {
      this.#ctx.log.info(`${why}: ${await this.#execute(p, cause, fenceUntilMs, refused)}`);
    } catch (err) {
      this.#ctx.log.error(`${why}: ${errorMessage(err)}`);
    }
  }

  /**
   * Carries out the startup placement; a group the planner refused is not placed (TND-RC-0106).
   * A start order another server refused (it did not see this
   * coordinator online or starting yet: the views settle a moment apart) is placed again after a
   * heartbeat timeout, STARTUP_TRIES times in all; a group still not placed then waits for the
   * operator (TND-RC-0106). An order carried out that failed is the start's own failure, handled
   * on that server (its recovery ladder), and is not placed again here.
   */
  async #startupPlacement(p: Plan, why: string): Promise<void> {
    for (const r of p.refusals) this.#notPlaced([r.group], r.reason);
    const refused = new Set<string>();
    await this.#executeLogged(p, 'STARTUP', why, 0, (a) => refused.add(a.group));
    if (refused.size === 0) return;
    const again = this.#startupAgain;
    again.tries += 1;
    if (again.tries >= STARTUP_TRIES) {
      this.#notPlaced([...refused], `its start order was refused ${again.tries} times`);
      return;
    }
    for (const group of refused) again.groups.add(group);
    again.atMs = Date.now() + this.#ctx.config.cluster.heartbeat.timeoutMs;
    this.#wakeAt(again.atMs);
  }

  /** Startup placements given up (TND-RC-0106): the groups wait for the operator. */
  #notPlaced(groups: string[], why: string): void {
    for (const group of groups) {
      const reason = `group ${group} not placed at startup: ${why}; start it with tandem group start`;
      this.#ctx.alerts.raise('TND-RC-0106', reason, { group });
      this.#ctx.log.error(`startup: ${reason}`, { group });
      this.#startupAgain.groups.delete(group);
    }
  }

  /** Runs the coordinator again at `atMs` (the end of a partition decision time or of the startup wait). */
  #wakeAt(atMs: number): void {
    const now = Date.now();
    // An earlier wake-up still to come stays: that pass sets the next one.
    if (this.#wakeTimer && this.#wakeAtMs > now && this.#wakeAtMs <= atMs) return;
    clearTimeout(this.#wakeTimer);
    this.#wakeAtMs = atMs;
    this.#wakeTimer = setTimeout(() => this.#reconcile(), Math.max(0, atMs - now) + 5);
    this.#wakeTimer.unref();
  }

  #nodeManager(): RpcClient {
    this.#nm ??= new RpcClient(this.#ctx.paths.rpc('nm'), { origin: 'tandem-rc', name: 'tandem-nm' });
    return this.#nm;
  }

  // --- checks ---------------------------------------------------------------------------------

  #group(name: string): GroupRuntime {
    if (!name) throw new TandemError('BAD_REQUEST', 'group command without a group name');
    const g = this.#groups.get(name);
    if (!g) throw new TandemError('NOT_FOUND', `no group named ${name}`);
    return g;
  }

  /** Finds a resource by name, in the given group or (names are unique in the cluster) in any. */
  #resource(group: string, name: string): { g: GroupRuntime; r: ResourceRuntime } {
    if (!name) throw new TandemError('BAD_REQUEST', 'resource command without a resource name');
    const candidates = group ? [this.#group(group)] : [...this.#groups.values()];
    for (const g of candidates) {
      const r = g.resources.get(name);
      if (r) return { g, r };
    }
    throw new TandemError('NOT_FOUND', group ? `no resource ${name} in group ${group}` : `no resource named ${name}`);
  }

  /** Refuses a command the service state forbids, or on a group that is busy. */
  #admit(g: GroupRuntime, startsSomething: boolean): void {
    const refusal = commandRefusal(this.#service, startsSomething);
    if (refusal) throw new TandemError('REFUSED', refusal);
    if (g.operation) throw new TandemError('CONFLICT', `group ${g.config.name} is ${g.operation}`);
  }

  #knownServer(server: string): void {
    if (server && !this.#ctx.config.servers.some((s) => s.name === server)) throw new TandemError('NOT_FOUND', `no server named ${server}`);
  }

  #remoteRefusal(group: string, verb: string, server: string): TandemError {
    return new TandemError(
      'REFUSED',
      `group ${group} cannot ${verb} on ${server}: this resource controller runs groups on ${this.#ctx.server} only`,
    );
  }

  /**
   * The placement planner, with this server online. The others are `unknown`: until the
   * coordinator tells this controller what the cluster sees (issue 3), it never starts a group
   * that a server of higher priority might be starting too.
   */
  #plan(event: PlanEvent): Plan {
    return plan({
      groups: this.#ctx.config.groups,
      servers: this.#ctx.config.servers.map((s) => ({ name: s.name, state: s.name === this.#ctx.server ? 'online' : 'unknown' })),
      placement: [...this.#groups.values()].map((g) => {
        const state = this.#state(g);
        return { group: g.config.name, state, server: state === 'offline' ? '' : this.#ctx.server };
      }),
      event,
    });
  }

  /** Why the plan cannot be carried out here (a refusal, or an action on another server); undefined when it can. */
  #planProblem(p: Plan): TandemError | undefined {
    const refusal = p.refusals[0];
    // details.reason NO_SERVER tells "nowhere to go" from other refusals (the monitor's failover rung needs to know).
    if (refusal) return new TandemError('REFUSED', refusal.reason, refusal.code ? { reason: refusal.code } : {});
    const remote = p.actions.find((a) => a.server !== this.#ctx.server);
    return remote ? this.#remoteRefusal(remote.group, remote.kind, remote.server) : undefined;
  }

  #outcome(g: GroupRuntime, want: GroupState, verb: string): ReplyBody {
    const state = this.#state(g);
    if (state !== want) {
      throw new TandemError('UNAVAILABLE', `group ${g.config.name} did not ${verb}: ${g.detail || `it is ${state}`}`, { state });
    }
    return ack(`group ${g.config.name} is ${state}${state === 'offline' ? '' : ` on ${this.#ctx.server}`}`);
  }

  // --- operations -----------------------------------------------------------------------------

  /** Runs one operation on a group; a second one at the same time is a CONFLICT. */
  #operate<T>(g: GroupRuntime, operation: GroupOperation, run: () => Promise<T>): Promise<T> {
    if (g.operation) return Promise.reject(new TandemError('CONFLICT', `group ${g.config.name} is ${g.operation}`));
    this.#phase(g, operation);
    const current = (async () => {
      try {
        return await run();
      } finally {
        if (this.#settled(g) === 'online') g.detail = '';
        g.operation = undefined;
        g.current = undefined;
        this.#refresh(g);
      }
    })();
    g.current = current;
    return current;
  }

  async #startup(): Promise<void> {
    const p = this.#plan({ kind: 'startup' });
    for (const refusal of p.refusals) {
      this.#ctx.alerts.raise('TND-RC-0106', refusal.reason, { group: refusal.group });
      this.#ctx.log.warn(`startup: ${refusal.reason}`, { group: refusal.group });
    }
    await Promise.all(
      p.actions.map(async (action) => {
        const g = this.#groups.get(action.group);
        if (!g || action.kind !== 'start' || action.server !== this.#ctx.server) {
          this.#ctx.log.warn(`startup: cannot ${action.kind} group ${action.group} on ${action.server} from here`);
          return;
        }
        await this.#operate(g, 'starting', () => this.#start(g, action.event)).catch((err: unknown) => {
          this.#ctx.log.error(`startup of group ${action.group} failed: ${errorMessage(err)}`, { group: action.group });
        });
      }),
    );
  }

  /**
   * Starts the whole group in dependency order, and says how it went. `fenceUntilMs`: a
   * failover's fence grace ends then (epoch ms); see `#startResources`.
   */
  async #start(g: GroupRuntime, event: ScriptEvent, fenceUntilMs = 0): Promise<void> {
    g.detail = '';
    await this.#startResources(g, g.order, event, new Set(), fenceUntilMs);
    const state = this.#settled(g);
    const name = g.config.name;
    if (state === 'online') {
      this.#ctx.alerts.raise('TND-RC-0101', `group ${name} started on ${this.#ctx.server} (${event})`, { group: name, event });
      this.#ctx.log.info(`group ${name} online`, { group: name, event });
    } else {
      this.#ctx.alerts.raise('TND-RC-0106', `group ${name} could not start: ${g.detail || state}`, { group: name, state });
    }
  }

  /**
   * Starts the named resources in the order given, skipping those whose dependencies are not
   * online. `waived`: resources whose failure the final action `continue` lets their dependents
   * ignore. `fenceUntilMs` (a failover from a server that went down): no resource starts before
   * the loser's fence grace ends then, except a floating IP that checks for a duplicate first: an
   * address the loser still holds answers that check, and the start waits while it does
   * (docs/partition.md, decision 25).
   */
  async #startResources(g: GroupRuntime, names: string[], event: ScriptEvent, waived = new Set<string>(), fenceUntilMs = 0): Promise<void> {
    this.#phase(g, 'starting');
    g.started = true;
    for (const name of names) {
      const r = g.resources.get(name);
      if (!r || r.state === 'online') continue;
      const unmet = r.config.dependsOn.filter((d) => g.resources.get(d)?.state !== 'online' && !waived.has(d));
      if (unmet.length > 0) {
        this.#ctx.log.warn(`resource ${name} not started: ${unmet.join(', ')} not online`, { group: g.config.name, resource: name });
        continue;
      }
      const fenceLeftMs = fenceUntilMs - Date.now();
      if (fenceLeftMs > 0 && !provesItselfFree(r.config, event)) {
        this.#ctx.log.info(`resource ${name} waits ${Math.ceil(fenceLeftMs)} ms for the rest of the fence grace`, {
          group: g.config.name,
          resource: name,
        });
        await sleep(fenceLeftMs);
      }
      if (await this.#startWithRetries(g, r, event)) continue;
      if (this.#multi && r.config.onStartFailure.failovers > 0) {
        // The failover rung: the coordinator decides, once this operation has ended; the final
        // action waits for its answer (it runs only when the group cannot fail over).
        this.#askFailover(g, r, names.slice(names.indexOf(name) + 1), event, waived);
        return;
      }
      this.#failoverRungSkipped(g, r);
      if (!(await this.#startFinalAction(g, r, waived))) return;
    }
  }

  /** Runs a resource's start final action; true when the start goes on with the next resources. */
  async #startFinalAction(g: GroupRuntime, r: ResourceRuntime, waived: Set<string>): Promise<boolean> {
    const action: StartFinalAction = r.config.onStartFailure.finalAction;
    this.#ctx.log.error(`resource ${r.config.name} failed to start: final action ${action}`, {
      group: g.config.name,
      resource: r.config.name,
    });
    if (action === 'continue') {
      waived.add(r.config.name);
      return true;
    }
    if (action === 'stop-group') {
      const detail = g.detail;
      await this.#stopResources(g, [...g.order].reverse(), 'GROUPSTOP');
      g.detail = detail;
    } else if (action !== 'hold') {
      // Cluster-level: nm stops the cluster service (and will ask us to DEACTIVATE, after this operation ends).
      this.#finalAction(action, g, r);
    }
    return false;
  }

  /**
   * Several servers: asks the coordinator (through nm) to fail the group over, once the operation
   * that found the failure has ended (the coordinator's stop order would meet a busy group
   * otherwise). Refused because the group cannot go anywhere (no other server, or the failovers
   * in a row used up), the resource's final action runs then, and with `continue` the rest of the
   * group starts after all.
   */
  #askFailover(g: GroupRuntime, r: ResourceRuntime, rest: string[], event: ScriptEvent, waived: Set<string>): void {
    const ids = { group: g.config.name, resource: r.config.name };
    const asked = async (): Promise<void> => {
      const command = {
        action: tandem.v1.GroupAction.GROUP_ACTION_FAILOVER,
        group: g.config.name,
        cause: tandem.v1.Cause.CAUSE_FAILOVER,
        failoverLimit: r.config.onStartFailure.failovers,
      };
      try {
        const reply = await this.#nodeManager().call({ group: command }, { timeoutMs: 2 * groupOperationTimeoutMs(g.config) });
        this.#ctx.log.warn(
          `group ${g.config.name} failed over after resource ${r.config.name} failed to start: ${reply.ack?.message ?? ''}`,
          ids,
        );
      } catch (err) {
        const e = toTandemError(err);
        // Only a group that cannot fail over gets its final action. Anything else (no coordinator
        // yet, no answer in time, the cluster suspended) may still move it, or may have: it stays
        // start-failed here for the operator.
        if (e.code !== 'REFUSED' || (e.details.reason !== 'NO_SERVER' && e.details.reason !== 'FAILOVER_LIMIT')) {
          this.#ctx.log.error(
            `failover of group ${g.config.name} not carried out: ${e.message}; the group stays failed here (tandem group start or move)`,
            ids,
          );
          return;
        }
        this.#ctx.log.warn(`failover of group ${g.config.name} refused: ${e.message}`, ids);
        await this.#operate(g, 'starting', async () => {
          if (await this.#startFinalAction(g, r, waived)) await this.#startResources(g, rest, event, waived);
        }).catch((e: unknown) => this.#ctx.log.error(`final action for ${r.config.name} failed: ${errorMessage(e)}`, ids));
      }
    };
    void (g.current ?? Promise.resolve()).catch(() => undefined).then(asked);
  }

  async #startWithRetries(g: GroupRuntime, r: ResourceRuntime, event: ScriptEvent): Promise<boolean> {
    const { retries } = r.config.onStartFailure;
    const ids = { group: g.config.name, resource: r.config.name };
    let failure = '';
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) {
        this.#ctx.alerts.raise('TND-RC-0105', `resource ${r.config.name} start retried (${attempt} of ${retries}): ${failure}`, ids);
      }
      this.#setResource(g, r, 'starting', '');
      const values = startValues(event, this.#ctx.server, g.config.servers, this.#diskFailed(g));
      this.#lastStart.set(g.config.name, r.config.name, values);
      try {
        await r.driver.start(scriptEnv(this.#target(g, r), { phase: 'start', values }));
        this.#setResource(g, r, 'online', '');
        return true;
      } catch (err) {
        r.startFailures++;
        failure = errorMessage(err);
        this.#ctx.log.warn(`resource ${r.config.name} failed to start: ${failure}`, ids);
      }
    }
    g.detail = `resource ${r.config.name} failed to start: ${failure}`;
    this.#setResource(g, r, 'start-failed', failure);
    this.#ctx.alerts.raise('TND-RC-0103', g.detail, { ...ids, attempts: String(retries + 1) });
    return false;
  }

  /** One server: the failover rung of a start failure has nowhere to go and is skipped (logged). */
  #failoverRungSkipped(g: GroupRuntime, r: ResourceRuntime): void {
    if (r.config.onStartFailure.failovers === 0) return;
    const problem = this.#planProblem(this.#plan({ kind: 'failover', group: g.config.name, from: this.#ctx.server }));
    const reason = problem?.message ?? 'the planner found no other server';
    this.#ctx.log.warn(`failover of group ${g.config.name} skipped: ${reason}`, { group: g.config.name, resource: r.config.name });
  }

  /** Stops every resource of the group in reverse dependency order; true when all are offline. */
  async #stop(g: GroupRuntime, factor: StopFactor): Promise<boolean> {
    const wasOffline = this.#settled(g) === 'offline';
    this.#phase(g, 'stopping');
    g.detail = '';
    await this.#stopResources(g, [...g.order].reverse(), factor);
    g.started = false;
    const state = this.#settled(g);
    const name = g.config.name;
    if (state !== 'offline') return false;
    if (wasOffline) return true;
    this.#ctx.alerts.raise('TND-RC-0102', `group ${name} stopped (${factor})`, { group: name, factor });
    this.#ctx.log.info(`group ${name} offline`, { group: name, factor });
    return true;
  }

  /** Stops the named resources in the order given; true when all of them are offline. */
  async #stopResources(g: GroupRuntime, names: string[], factor: StopFactor): Promise<boolean> {
    this.#phase(g, 'stopping');
    // Resources that a resource which would not stop depends on: final action `hold` leaves them running.
    const held = new Set<string>();
    for (const name of names) {
      const r = g.resources.get(name);
      if (!r || r.state === 'offline' || held.has(name)) continue;
      if (await this.#stopWithRetries(g, r, factor)) continue;
      const action: StopFinalAction = r.config.onStopFailure.finalAction;
      this.#ctx.log.error(`resource ${name} failed to stop: final action ${action}`, { group: g.config.name, resource: name });
      if (action === 'continue') continue;
      for (const dep of dependenciesOf(g.config.resources, name)) held.add(dep);
      if (action !== 'hold') this.#finalAction(action, g, r);
    }
    // Wholly stopped here (a group stop, its final action, the last resource stopped): nothing of
    // it is left for a recovery run after a power cut.
    if ([...g.resources.values()].every((r) => r.state === 'offline')) this.#lastStart.forget(g.config.name);
    return names.every((n) => g.resources.get(n)?.state === 'offline');
  }

  async #stopWithRetries(g: GroupRuntime, r: ResourceRuntime, factor: StopFactor): Promise<boolean> {
    const { retries } = r.config.onStopFailure;
    const ids = { group: g.config.name, resource: r.config.name };
    const lastStart = this.#lastStart.get(g.config.name, r.config.name) ?? startValues('START', this.#ctx.server, g.config.servers, false);
    let failure = '';
    for (let attempt = 0; attempt <= retries; attempt++) {
      this.#setResource(g, r, 'stopping', '');
      try {
        await r.driver.stop(scriptEnv(this.#target(g, r), { phase: 'stop', factor, lastStart }));
        r.startFailures = 0;
        this.#setResource(g, r, 'offline', '');
        return true;
      } catch (err) {
        failure = errorMessage(err);
        this.#ctx.log.warn(`resource ${r.config.name} failed to stop (attempt ${attempt + 1} of ${retries + 1}): ${failure}`, ids);
      }
    }
    g.detail = `resource ${r.config.name} failed to stop: ${failure}`;
    this.#setResource(g, r, 'stop-failed', failure);
    this.#ctx.alerts.raise('TND-RC-0104', g.detail, { ...ids, attempts: String(retries + 1) });
    return false;
  }

  /**
   * Hands a cluster-level final action to nm without waiting: nm stops the cluster service by
   * sending us DEACTIVATE, which waits for the operation that is asking.
   */
  #finalAction(action: string, g: GroupRuntime, r: ResourceRuntime): void {
    const order: FinalActionOrder = { action, group: g.config.name, reason: g.detail, source: r.config.name };
    this.#ctx.log.error(`final action ${action} asked of nm: ${g.detail}`, { group: g.config.name, resource: r.config.name });
    void this.#sendFinalAction(order).catch((err: unknown) => {
      this.#ctx.log.error(`final action ${action} not confirmed by nm: ${errorMessage(err)}`, {
        group: g.config.name,
        resource: r.config.name,
      });
    });
  }

  async #finalActionToNodeManager(order: FinalActionOrder): Promise<void> {
    // nm answers after it stopped the cluster service, which includes stopping our groups.
    await this.#nodeManager().call({ finalAction: order }, { timeoutMs: 300_000 });
  }

  // --- state ----------------------------------------------------------------------------------

  #target(g: GroupRuntime, r: ResourceRuntime): ScriptTarget {
    return { cluster: this.#ctx.config.cluster.name, server: this.#ctx.server, group: g.config, resource: r.config.name };
  }

  #diskFailed(g: GroupRuntime): boolean {
    return [...g.resources.values()].some((r) => DISK_TYPES.has(r.config.type) && r.state === 'start-failed');
  }

  #state(g: GroupRuntime): GroupState {
    return groupState(
      [...g.resources.values()].map((r) => r.state),
      g.operation,
      g.started,
    );
  }

  /** The state the group will have when its current operation ends. */
  #settled(g: GroupRuntime): GroupState {
    return groupState(
      [...g.resources.values()].map((r) => r.state),
      undefined,
      g.started,
    );
  }

  #phase(g: GroupRuntime, operation: GroupOperation): void {
    g.operation = operation;
    this.#refresh(g);
  }

  #setResource(g: GroupRuntime, r: ResourceRuntime, state: ResourceState, detail: string): void {
    const changed = r.state !== state;
    r.state = state;
    r.detail = detail;
    if (changed) this.#ctx.events.publish('resource', `${g.config.name}/${r.config.name}`, state, detail, { group: g.config.name });
    this.#refresh(g);
  }

  /** Publishes the group's state when it changed. */
  #refresh(g: GroupRuntime): void {
    const state = this.#state(g);
    if (state === g.published) return;
    g.published = state;
    this.#ctx.events.publish('group', g.config.name, state, g.detail, { server: state === 'offline' ? '' : this.#ctx.server });
  }

  #setService(state: ServiceState): void {
    if (state === this.#service) return;
    this.#ctx.log.info(`cluster service ${this.#service} -> ${state}`);
    this.#service = state;
    this.#ctx.events.publish('service', this.#ctx.server, state);
  }
}
