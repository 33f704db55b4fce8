/**
 * tandem-nm on one server: owns the cluster service state (service-state.ts), drives rc and rm
 * through it, and is the entry point of every CLI request (docs/architecture.md): it checks a
 * request against the configuration and the service state, then answers it or forwards it.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import {
  EXIT,
  EventSubscriber,
  GROUP_OPERATION_MARGIN_MS,
  PM2_NAMES,
  RpcClient,
  SerialQueue,
  configWarnings,
  groupOperationTimeoutMs,
  mutualHeardMs,
  partitionDecisionMs,
  TandemError,
  flushLogger,
  readAlerts,
  rssKb,
  runOsAction,
  sleep,
  toTandemError,
  validateConfigText,
  type AlertId,
  type DaemonContext,
  type GroupConfig,
  type OsAction,
  type RpcHandler,
} from '@tandem/core';
import { clusterStatusToJson, v1, type Request, type RequestInit, type tandem } from '@tandem/protocol';
import { collectLogs, defaultArchivePath } from './logs-collect.js';
import { ClusterViewTracker, declaredDownBy, sameView, type ClusterView, type StateChange, type ViewInput } from './cluster-view.js';
import { Membership, type LocalMembership } from './membership/membership.js';
import { DISK_SETTLE_MS, defaultDiskLeaseTtlMs, holdOnLease, resolvePartition, splitLosers, type HeldLease } from './partition/index.js';
import { diffConfigs, installConfig, nextGeneration, readGeneration } from './config-distribution.js';
import { markLife, previousLife } from './return-state.js';
import type { PeerView } from './membership/table.js';
import { decideReboot, loadRebootHistory, rebootHistoryPath, saveRebootHistory, type RebootDecision } from './reboot-limit.js';
import { canTransition, clusterTransition, type ClusterCommandName, type ServiceState } from './service-state.js';
import { gatherStatus, type PeerDaemon } from './status.js';

type ReplyBody = Awaited<ReturnType<RpcHandler>>;
type RequestBody = Omit<RequestInit, 'id' | 'deadlineMs' | 'revision' | 'origin'>;

const { ClusterAction, GroupAction, ResourceAction, MonitorAction, ConfigAction, ServiceAction, Cause, NodeAction } = v1;

/** rc and rm must answer ping within this long after nm starts, or the cluster service stays stopped. */
export const STARTUP_PING_DEADLINE_MS = 30_000;
const STARTUP_POLL_MS = 250;
const PING_TIMEOUT_MS = 1000;
const SHORT_TIMEOUT_MS = 10_000;
const EVENTS_MAX = 10_000;
/** How often nm asks the guard again for an emergency while the guard does not answer. */
export const GUARD_RETRY_MS = 200;
/** How often nm checks that the guard answers, so a lost guard is in the log before it is needed. */
export const GUARD_PING_INTERVAL_MS = 5000;

/** The final actions nm carries out; the others (none, hold, continue, stop-group) stay with rc and rm. */
export const NM_FINAL_ACTIONS = [
  'stop-cluster-service',
  'stop-cluster-service-and-shutdown',
  'stop-cluster-service-and-reboot',
  'emergency',
] as const;
export type NmFinalAction = (typeof NM_FINAL_ACTIONS)[number];

/**
 * Whether a node manager carries out an order from a coordinator it sees in `state`: online, or
 * still starting (a coordinator's rc places the groups as soon as it is active, just before its
 * node manager says online). From a server seen in any other state (down, unreachable, not known
 * yet) or not at all, never.
 */
export const acceptsOrdersFrom = (state: string | undefined): boolean => state === 'online' || state === 'starting';

const CLUSTER_COMMANDS = new Map<number, ClusterCommandName>([
  [ClusterAction.CLUSTER_ACTION_START, 'start'],
  [ClusterAction.CLUSTER_ACTION_STOP, 'stop'],
  [ClusterAction.CLUSTER_ACTION_SUSPEND, 'suspend'],
  [ClusterAction.CLUSTER_ACTION_RESUME, 'resume'],
]);

const ENTERED: Record<ClusterCommandName, { alert: AlertId; message: string }> = {
  start: { alert: 'TND-NM-0001', message: 'cluster service started' },
  stop: { alert: 'TND-NM-0002', message: 'cluster service stopped' },
  suspend: { alert: 'TND-NM-0003', message: 'cluster service suspended' },
  resume: { alert: 'TND-NM-0004', message: 'cluster service resumed' },
};

/** What is left of a request's deadline for a call made on its behalf; `fallback` when it has none. */
const remainingMs = (request: Request, fallback: number): number =>
  request.deadlineMs > 0 ? Math.max(1, request.deadlineMs - Date.now()) : fallback;

/** When hb last heard a server on any path (0: never). */
const lastHeardMs = (s: tandem.v1.ServerStatus): number => Math.max(0, ...s.paths.map((p) => Number(p.lastHeardMs)));

function need<T>(part: T | null | undefined, what: string): T {
  if (part === null || part === undefined) throw new TandemError('BAD_REQUEST', `${what} request without a body`);
  return part;
}

export interface NodeManagerOptions {
  /** runs the shutdown or reboot of a final action (default: core's runOsAction); tests pass a recording fake */
  runOsAction?: (action: Extract<OsAction, 'shutdown' | 'reboot'>) => string;
  /**
   * Leaves the process like a crash (default: exit 70 after flushing the log). The guard then finds
   * nm gone without a goodbye (or, if it is away, nm's registry file with a dead pid) and fences.
   */
  exitFatal?: () => void;
  /** how often the guard is pinged (default GUARD_PING_INTERVAL_MS) */
  guardPingIntervalMs?: number;
}

export class NodeManager {
  readonly #ctx: DaemonContext;
  readonly #clients: Record<PeerDaemon, RpcClient>;
  readonly #runOsAction: NonNullable<NodeManagerOptions['runOsAction']>;
  readonly #exitFatal: () => void;
  readonly #guardPing: NodeJS.Timeout;
  /** whether the last ping of the guard went unanswered (warned once per outage) */
  #guardLost = false;
  #state: ServiceState = 'starting';
  /** the cluster command in progress, if any */
  #busy: ClusterCommandName | undefined;
  /** cluster commands run one after the other, each checking the state it finds */
  readonly #commands = new SerialQueue();
  #closed = false;
  /** the link to the other servers' node managers; none with a one-server configuration */
  #membership: Membership | undefined;
  /** hb's incarnation once it told it; 0 (not known) until then */
  #incarnation: number;
  /** the cluster as this node manager sees it (several servers) */
  readonly #tracker = new ClusterViewTracker();
  /** the last view rc acknowledged */
  #pushed: ClusterView | undefined;
  /** hb's server events: a peer heard or lost is acted on at once, not at the next exchange */
  #hbEvents: EventSubscriber | undefined;
  /** set once this server fences itself (declared down by a peer, or lost partition resolution) */
  #fencing = false;
  /** a server fell silent and partition resolution has not decided yet: no coordinator meanwhile */
  #resolving: Promise<void> | undefined;
  #resolveAgain = false;
  /** the generation of the configuration file installed here (`tandem config apply`); 0 when never applied */
  #generation: number;
  /** the applies this server runs as the coordinator, one after the other */
  readonly #applies = new SerialQueue();
  /** the highest generation this server issued in an apply, installed everywhere or not */
  #issued = 0;
  /** set while this server waits, isolated, for `tandem node return` (its previous life did not stop cleanly) */
  #awaitingReturn: (() => void) | undefined;
  /** renews an arbiter's lease while a server stays silent (docs/partition.md) */
  #renewTimer: NodeJS.Timeout | undefined;
  /** the arbiter lease the last decision that survived was granted (none with majority alone) */
  #lease: HeldLease | undefined;
  /** renewals are failing to reach the arbiter: alerted once per outage */
  #holdingOn = false;
  /** the partition (#partitionKey) the last decision that survived counted; undefined after any other outcome */
  #survivedWith: string | undefined;
  /** the peers hb heard within the quorum lease at the last look (what partition resolution counts) */
  #heardRecently: string[] = [];
  /** the peers hb hears but that have been silent for the quorum lease */
  readonly #quiet = new Set<string>();
  /** each peer's last reported lost servers (sorted, joined), to look again when they change */
  readonly #lostReported = new Map<string, string>();

  constructor(ctx: DaemonContext, opts: NodeManagerOptions = {}) {
    this.#ctx = ctx;
    const client = (d: PeerDaemon): RpcClient => new RpcClient(ctx.paths.rpc(d), { origin: PM2_NAMES.nm, name: PM2_NAMES[d] });
    this.#clients = { hb: client('hb'), rc: client('rc'), rm: client('rm'), md: client('md'), guard: client('guard') };
    this.#runOsAction = opts.runOsAction ?? runOsAction;
    this.#exitFatal = opts.exitFatal ?? (() => void flushLogger(ctx.log, 300).then(() => process.exit(EXIT.FATAL)));
    this.#guardPing = setInterval(() => void this.#pingGuard(), opts.guardPingIntervalMs ?? GUARD_PING_INTERVAL_MS);
    this.#guardPing.unref();
    this.#incarnation = 0;
    this.#generation = readGeneration(ctx.paths.state);
    for (const warning of configWarnings(ctx.config)) ctx.log.warn(`configuration: ${warning}`);
  }

  /**
   * With more than one server, opens the CURVE link to the other node managers and starts the
   * membership exchange. Throws a clear error when the key pair is missing or does not match
   * the configuration. With one server it does nothing: no TCP socket, no key needed.
   */
  async openMembership(): Promise<void> {
    if (this.#ctx.config.servers.length <= 1 || this.#membership) return;
    this.#membership = await Membership.open(this.#ctx, () => this.#localMembership(), this.#ctx.startedMs, {
      heard: (from, m) => {
        if (declaredDownBy(m, this.#ctx.server, this.#incarnation)) this.#fenceSelf(`${from} declared this server down`);
        else if (this.#lostChanged(from, m)) this.#membership?.refresh();
      },
      request: (request) => this.#fromPeer(request),
    });
    const events = new EventSubscriber([this.#ctx.paths.events('hb')], ['server']);
    this.#hbEvents = events;
    void events.run(() => this.#membership?.refresh()).catch((err: unknown) => this.#ctx.log.error(`hb events: ${String(err)}`));
  }

  /** The cluster view as last computed (several servers), undefined before the first exchange. */
  get view(): ClusterView | undefined {
    return this.#tracker.view;
  }

  /** What this node manager learned from its peers (empty with one server). */
  peers(): PeerView[] {
    return this.#membership?.peers() ?? [];
  }

  /**
   * Every exchange: asks hb whom it hears and rc which groups run here, updates the cluster view
   * (telling rc when it changed) and returns what the peers are told of this server.
   */
  async #localMembership(): Promise<LocalMembership> {
    const { config, server } = this.#ctx;
    const timeoutMs = Math.min(config.cluster.heartbeat.intervalMs, PING_TIMEOUT_MS);
    const [heard, local] = await Promise.all([
      this.#clients.hb.call({ status: {} }, { timeoutMs }).then(
        (reply) => reply.servers?.servers ?? [],
        (err: unknown) => {
          // Without hb nothing is known to be heard: say so rather than repeat an old list.
          this.#ctx.log.debug(`membership: tandem-hb: ${toTandemError(err).message}`);
          return undefined;
        },
      ),
      this.#clients.rc.call({ status: {} }, { timeoutMs }).then(
        (reply) => reply.groups ?? undefined,
        (err: unknown) => {
          this.#ctx.log.debug(`membership: tandem-rc: ${toTandemError(err).message}`);
          return undefined;
        },
      ),
    ]);
    const own = heard?.find((s) => s.local);
    if (own?.incarnation) this.#incarnation = own.incarnation;
    const localGroups = (local?.groups ?? []).filter((g) => g.state !== 'offline').map((g) => ({ group: g.name, state: g.state }));
    const input = (): ViewInput => ({
      servers: config.servers.map((s) => s.name),
      self: server,
      selfState: this.#reportedState(),
      undecided: this.#resolving !== undefined,
      selfIncarnation: this.#incarnation,
      localGroups,
      heard: heard?.map((h) => ({ name: h.name, state: h.state, incarnation: h.incarnation })),
      peers: this.peers(),
      startupDone: local?.startupDone ?? false,
    });
    const first = this.#tracker.update(input(), Date.now());
    const changes = first.changes;
    let view = first.view;
    const deciding = this.#resolving;
    if (heard) this.#noteQuiet(heard);
    this.#onChanges(changes);
    if (heard) this.#bridge(heard);
    // A decision started by what this exchange found: rc must not act on a coordinator meanwhile.
    if (this.#resolving !== deciding || this.#fencing) view = this.#tracker.update(input(), Date.now()).view;
    await this.#pushView(view);
    return {
      incarnation: this.#incarnation,
      state: this.#reportedState(),
      hears: (heard ?? []).filter((s) => !s.local && s.state === 'online').map((s) => s.name),
      lost: (heard ?? []).flatMap((s) => {
        const last = lastHeardMs(s);
        const silentMs = Date.now() - last;
        return !s.local && last > 0 && silentMs > config.cluster.networkPartition.quorumLeaseMs ? [{ server: s.name, silentMs }] : [];
      }),
      groups: localGroups,
      down: this.#tracker.declaredDown(),
      startupDone: view.startupDone,
      configGeneration: this.#generation,
    };
  }

  /**
   * The quorum lease (DESIGN.md 6.2, docs/partition.md): a peer silent that long counts as lost for
   * partition resolution before the heartbeat timeout declares it down, so that a losing side has
   * released everything by the time the winners take over. So does a peer that has not heard this
   * server that long though it is still heard (a one-way loss): both sides decide at once.
   */
  #noteQuiet(heard: tandem.v1.ServerStatus[]): void {
    const now = Date.now();
    const leaseMs = this.#ctx.config.cluster.networkPartition.quorumLeaseMs;
    const recent: string[] = [];
    let newlyQuiet = false;
    for (const s of heard) {
      if (s.local || s.state !== 'online') {
        this.#quiet.delete(s.name);
        continue;
      }
      if (now - mutualHeardMs(lastHeardMs(s), Number(s.heardUsMs), this.#ctx.config.cluster.heartbeat.intervalMs) <= leaseMs) {
        recent.push(s.name);
        this.#quiet.delete(s.name);
      } else if (!this.#quiet.has(s.name)) {
        this.#quiet.add(s.name);
        newlyQuiet = true;
      }
    }
    this.#heardRecently = recent;
    if (newlyQuiet && this.#runsGroups()) this.#resolvePartition();
  }

  /**
   * A split that is not a clique (partition/bridge.ts): two peers that no longer hear each other
   * while this server hears both would each keep a majority with it. The later one in
   * configuration order is declared down; the membership this exchange sends tells it, and it
   * fences itself. The earlier one takes its groups over once this server, too, no longer hears
   * it (cluster-view.ts), after the fence grace, as after any loss. Runs on every exchange, with
   * what hb said just now: a report of a lost peer weighed against an older look of this
   * server's own would take a server that died for one that is cut off.
   */
  #bridge(heard: tandem.v1.ServerStatus[]): void {
    if (this.#fencing || this.#awaitingReturn || this.#closed || !this.#membership) return;
    const { config } = this.#ctx;
    const losers = splitLosers({
      servers: config.servers.map((s) => s.name),
      nowMs: Date.now(),
      quorumLeaseMs: config.cluster.networkPartition.quorumLeaseMs,
      intervalMs: config.cluster.heartbeat.intervalMs,
      heardAtMs: new Map(heard.filter((s) => !s.local).map((s) => [s.name, lastHeardMs(s)])),
      incarnations: new Map(heard.map((s) => [s.name, Number(s.incarnation)])),
      peers: this.peers(),
    });
    for (const l of losers) {
      if (!this.#tracker.declareDown(l.server, l.incarnation)) continue;
      const message = `split that is not a clique: ${l.reason}`;
      this.#ctx.alerts.raise('TND-NM-0024', message, { server: l.server });
      this.#ctx.log.error(message, { server: l.server });
    }
  }

  /** Whether a peer's report names other lost servers than its last one did: this server looks at once. */
  #lostChanged(from: string, m: tandem.v1.Membership): boolean {
    const now = m.lost
      .map((l) => l.server)
      .sort()
      .join();
    const before = this.#lostReported.get(from) ?? '';
    this.#lostReported.set(from, now);
    return now !== before && now !== '';
  }

  /**
   * Whether a split concerns this server: only while its cluster service runs (or is suspended)
   * can it hold anything that must be released. During the startup wait servers are not heard
   * yet; with the service stopped (a cluster shutdown going on, say) it runs nothing.
   */
  #runsGroups(): boolean {
    return this.#state === 'online' || this.#state === 'suspended';
  }

  /**
   * A witness or disk lease lapses unless renewed: while a server stays silent, this side asks
   * again every third of the lease (or sooner, after a renewal that could not reach the arbiter),
   * so that the lease never passes to a silent server that comes back; a renewal refused is a
   * lost partition like any other.
   */
  #scheduleRenewal(inMs: number | undefined): void {
    clearTimeout(this.#renewTimer);
    this.#renewTimer = undefined;
    if (inMs === undefined || this.#closed) return;
    this.#renewTimer = setTimeout(
      () => {
        this.#renewTimer = undefined;
        // Offline, unreachable (a peer still hears it: a split that is not a clique) or quiet.
        const silent = (this.#tracker.view?.servers ?? []).some(
          (s) => !s.local && (s.state === 'offline' || s.state === 'unreachable' || this.#quiet.has(s.name)),
        );
        if (silent && this.#runsGroups() && !this.#fencing) this.#resolvePartition();
      },
      Math.min(2 ** 31 - 1, Math.max(100, Math.floor(inMs))),
    );
    this.#renewTimer.unref();
  }

  #onChanges(changes: StateChange[]): void {
    let lost = false;
    for (const c of changes) {
      this.#ctx.log.info(`server ${c.server}: ${c.from} -> ${c.to}`, { server: c.server });
      if (c.to !== 'offline') continue;
      this.#ctx.alerts.raise('TND-NM-0020', `server ${c.server} is down (was ${c.from})`, { server: c.server });
      lost = true;
    }
    // Declared down after its quorum lease: the decision taken then counted what is heard now,
    // and a second one would leave the cluster without a coordinator meanwhile for nothing.
    if (lost && this.#runsGroups() && this.#survivedWith !== this.#partitionKey()) this.#resolvePartition();
  }

  /** This server's partition now (sorted, joined), as a decision counts it. */
  #partitionKey(): string {
    return [this.#ctx.server, ...this.#heardRecently].sort().join();
  }

  /**
   * A server fell silent: does this side of the split survive (DESIGN.md 6.2)? Until it has
   * decided, this node manager names no coordinator; a loser fences itself. One decision at a
   * time; a server lost meanwhile is decided again right after.
   */
  #resolvePartition(): void {
    if (this.#resolving) {
      this.#resolveAgain = true;
      return;
    }
    const { config, server } = this.#ctx;
    const heard = [server, ...this.#heardRecently];
    const key = this.#partitionKey();
    this.#survivedWith = undefined;
    const decisionMs = partitionDecisionMs(config.cluster);
    this.#resolving = resolvePartition({
      cluster: config.cluster.name,
      networkPartition: config.cluster.networkPartition,
      servers: config.servers.map((s) => s.name),
      self: server,
      heard,
      timeoutMs: Math.max(decisionMs, 100),
      disk: { ttlMs: defaultDiskLeaseTtlMs(config.cluster.heartbeat.timeoutMs), settleMs: Math.min(DISK_SETTLE_MS, decisionMs / 2) },
    })
      .then((decision) => {
        if (!decision.survive) {
          // A renewal that cannot reach the arbiter: the lease this side holds stays its own until it runs out.
          const retryMs = config.cluster.heartbeat.intervalMs;
          const holding = holdOnLease({
            decision,
            lease: this.#lease,
            members: heard,
            nowMs: performance.now(),
            retryMs,
            attemptMs: Math.max(decisionMs, 100),
            deadlineMs: config.cluster.emergency.deadlineMs,
          });
          if (!holding) return this.#fenceSelf(`lost network partition resolution: ${decision.reason}`);
          const message = `partition resolution: the lease could not be renewed: ${holding}`;
          if (!this.#holdingOn) this.#ctx.alerts.raise('TND-NM-0025', message);
          this.#holdingOn = true;
          this.#ctx.log.warn(message);
          return this.#scheduleRenewal(retryMs);
        }
        this.#holdingOn = false;
        this.#survivedWith = key;
        this.#lease = decision.lease;
        this.#ctx.log.warn(`partition resolution: this side survives: ${decision.reason}`);
        this.#scheduleRenewal(decision.lease && (decision.lease.untilMs - performance.now()) / 3);
      })
      .catch((err: unknown) => this.#fenceSelf(`network partition resolution failed: ${toTandemError(err).message}`))
      .finally(() => {
        this.#resolving = undefined;
        if (this.#resolveAgain) {
          this.#resolveAgain = false;
          this.#resolvePartition();
        } else this.#membership?.refresh();
      });
  }

  /** Tells rc the view when it changed; rc acts on it when this server is the coordinator. */
  async #pushView(view: ClusterView): Promise<void> {
    if (sameView(this.#pushed, view) || this.#state === 'starting') return;
    try {
      await this.#clients.rc.call({ view }, { timeoutMs: PING_TIMEOUT_MS });
      this.#pushed = view;
    } catch (err) {
      this.#ctx.log.warn(`cluster view not taken by tandem-rc: ${toTandemError(err).message}`);
    }
  }

  /**
   * Requests from another server's node manager: the coordinator's orders, and group commands
   * forwarded to this server as the coordinator. Both go to rc.
   */
  async #fromPeer(request: Request): Promise<ReplyBody> {
    if (this.#fencing) throw new TandemError('REFUSED', `${this.#ctx.server} is fencing itself`);
    switch (request.body) {
      case 'order': {
        const order = need(request.order, 'order');
        const from = this.#tracker.view?.servers.find((s) => s.name === order.coordinator);
        if (!acceptsOrdersFrom(from?.state)) {
          throw new TandemError('REFUSED', `order from ${order.coordinator || '""'} refused: it is ${from?.state ?? 'not a server'} here`);
        }
        return this.#forwardToRc({ order }, groupOperationTimeoutMs(this.#groupConfig(order.group)));
      }
      case 'group': {
        // Addressed to this server (tandem --node): a command like a local one. Otherwise a
        // command the sender's node manager forwards to this server as the coordinator.
        if (request.node === this.#ctx.server) return this.handle(request);
        const cmd = need(request.group, 'group');
        return this.#forwardToRc({ group: cmd }, groupOperationTimeoutMs(this.#groupConfig(cmd.group)));
      }
      case 'nodeCommand':
        if (request.node === this.#ctx.server) return this.handle(request);
        return this.#forwardToRc({ nodeCommand: need(request.nodeCommand, 'node_command') }, this.#allGroupsTimeoutMs());
      case 'status':
      case 'cluster':
      case 'resource':
      case 'monitor':
      case 'config':
      case 'events':
      case 'logsCollect':
        if (request.node === this.#ctx.server) return this.handle(request);
        throw new TandemError('BAD_REQUEST', `a ${request.body} request over the node manager link must name this server`);
      default:
        throw new TandemError('BAD_REQUEST', `the node manager link does not serve ${request.body ?? 'an empty'} request`);
    }
  }

  /**
   * `tandem --node NAME`: the request goes to that server's node manager over the link, which
   * answers it as its own CLI's; the reply comes back as it is.
   */
  async #toNode(request: Request): Promise<ReplyBody> {
    const node = request.node;
    if (!this.#ctx.config.servers.some((s) => s.name === node)) throw new TandemError('NOT_FOUND', `no server named ${node}`);
    if (!this.#membership || !request.body) throw new TandemError('UNAVAILABLE', `${node} cannot be reached from ${this.#ctx.server}`);
    const body = request.body;
    const timeoutMs = remainingMs(request, SHORT_TIMEOUT_MS);
    const reply = await this.#membership.call(node, { node, [body]: request[body] }, timeoutMs);
    return reply.body ? ({ [reply.body]: reply[reply.body] } as ReplyBody) : {};
  }

  /**
   * This server must not run anything any more: a peer declared it down (it was frozen or cut
   * off, and the others may have taken its groups over) or it lost partition resolution. The
   * guard runs the emergency procedure; nm stops answering orders meanwhile.
   */
  #fenceSelf(reason: string): void {
    if (this.#fencing || this.#closed) return;
    this.#fencing = true;
    const message = `this server fences itself: ${reason}`;
    this.#ctx.alerts.raise('TND-NM-0021', message);
    this.#ctx.log.error(message);
    // rc and the peers learn at once that this server is isolated (no coordinator here any more).
    this.#membership?.refresh();
    void this.#requestEmergency(v1.FinalActionRequest.create({ action: 'emergency', reason: message, source: 'tandem-nm' })).catch(
      (err: unknown) => this.#ctx.log.error(`emergency not handed over: ${toTandemError(err).message}`),
    );
  }

  /** The cluster service as peers and `tandem status` see it: isolated while this server fences itself or waits for tandem node return. */
  #reportedState(): ServiceState | 'isolated' {
    return this.#fencing || this.#awaitingReturn ? 'isolated' : this.#state;
  }

  get state(): ServiceState {
    return this.#state;
  }

  /** Waits for rc and rm, then for the servers (or the startup wait), then activates the cluster service. */
  async startup(): Promise<void> {
    try {
      await this.#waitForDaemons(['rc', 'rm']);
      const returning = this.#ctx.config.servers.length > 1 && previousLife(this.#ctx.paths.state) === 'unclean';
      if (returning) {
        await this.#waitForReturn();
        await this.#recoverReturned();
      }
      await this.#waitForServers();
      await this.#commands.run(async () => {
        await this.#activate(Cause.CAUSE_STARTUP);
        this.#enter('online', 'TND-NM-0001', 'cluster service started');
      });
    } catch (err) {
      if (this.#closed || this.#state !== 'starting') return;
      const e = toTandemError(err);
      this.#ctx.log.error(`cluster service did not start: ${e.message}`);
      this.#enter('stopped', 'TND-NM-0002', `cluster service did not start: ${e.message} (tandem cluster start retries)`);
    }
  }

  async stop(reason: string): Promise<void> {
    this.#closed = true;
    try {
      this.#awaitingReturn?.();
      clearInterval(this.#guardPing);
      clearTimeout(this.#renewTimer);
      this.#membership?.close();
      this.#hbEvents?.close();
      this.#ctx.log.info(`node manager stopping: ${reason}`);
      for (const c of Object.values(this.#clients)) c.close();
    } finally {
      // An orderly stop: the next start rejoins by itself. (A fence or a crash never gets here.)
      // A server fencing itself (stop-services stops the daemons in order) did not stop cleanly,
      // nor did one still waiting for tandem node return.
      if (this.#state !== 'starting' && !this.#fencing) this.#markLife(false);
    }
  }

  readonly handle: RpcHandler = async (request) => {
    if (request.node && request.node !== this.#ctx.server) return this.#toNode(request);
    switch (request.body) {
      case 'status':
        return { status: await this.status() };
      case 'cluster':
        return this.#cluster(need(request.cluster, 'cluster'));
      case 'group':
        return this.#group(request, need(request.group, 'group'));
      case 'resource':
        return this.#resource(request, need(request.resource, 'resource'));
      case 'monitor':
        return this.#monitor(need(request.monitor, 'monitor'));
      case 'config':
        return this.#config(request, need(request.config, 'config'));
      case 'events':
        return this.#events(need(request.events, 'events'));
      case 'logsCollect':
        return this.#logsCollect(need(request.logsCollect, 'logs_collect'));
      case 'finalAction':
        return this.#finalAction(request, need(request.finalAction, 'final_action'));
      case 'order':
        return this.#order(need(request.order, 'order'));
      case 'nodeCommand':
        return this.#nodeCommand(need(request.nodeCommand, 'node_command'));
      default:
        throw new TandemError('BAD_REQUEST', `tandem-nm does not serve ${request.body ?? 'an empty'} request`);
    }
  };

  /** The whole server as `tandem status` shows it; a daemon that does not answer is reported, not fatal. */
  status(): Promise<tandem.v1.ClusterStatus.$Properties> {
    const ctx = this.#ctx;
    return gatherStatus(
      {
        cluster: ctx.config.cluster.name,
        server: ctx.server,
        state: this.#reportedState(),
        servers: ctx.config.servers.map((s) => s.name),
        peers: this.peers(),
        remoteGroups: (this.#tracker.view?.servers ?? [])
          .filter((s) => !s.local && s.state !== 'offline' && s.state !== 'isolated')
          .flatMap((s) => s.groups.map((g) => ({ server: s.name, ...g }))),
        self: { name: 'nm', pid: process.pid, state: 'running', startedMs: ctx.startedMs, rssKb: rssKb(process.pid) },
      },
      this.#clients,
      (part, err) => ctx.log.debug(`status: ${part} missing: ${err.message}`),
    );
  }

  // ---- cluster service -------------------------------------------------------------------

  #enter(next: ServiceState, alert: AlertId, message: string): void {
    if (!canTransition(this.#state, next)) {
      throw new TandemError('INTERNAL', `cluster service cannot go from ${this.#state} to ${next}`);
    }
    this.#state = next;
    // Online, by startup or by tandem cluster start: from now on a life that ends without an
    // orderly stop is unclean, and the next start waits for tandem node return.
    if (next === 'online') this.#markLife(true);
    this.#ctx.alerts.raise(alert, message);
    this.#ctx.events.publish('service', this.#ctx.server, next, message);
    this.#ctx.log.info(message, { state: next });
  }

  /** Notes how this life stands; a record that cannot be written is reported (the next start then finds the older one). */
  #markLife(running: boolean): void {
    try {
      markLife(this.#ctx.paths.state, running);
    } catch (err) {
      this.#ctx.log.error(`the ${running ? 'running' : 'clean stop'} mark was not written: ${toTandemError(err).message}`);
    }
  }

  /**
   * Back after going down without a clean stop: before it joins, rc runs the local recovery
   * (TANDEM_EVENT=RECOVER) of the groups this server held then. The scripts' business: a failure
   * is reported, and the server joins anyway.
   */
  async #recoverReturned(): Promise<void> {
    try {
      await this.#service('rc', ServiceAction.SERVICE_ACTION_RECOVER, Cause.CAUSE_STARTUP, this.#allGroupsTimeoutMs());
    } catch (err) {
      this.#ctx.log.warn(`local recovery before returning to the cluster: ${toTandemError(err).message}`);
    }
  }

  async #service(daemon: 'rc' | 'rm', action: tandem.v1.ServiceAction, cause: tandem.v1.Cause, timeoutMs: number): Promise<void> {
    await this.#clients[daemon].call({ service: { action, cause } }, { timeoutMs });
  }

  /** rc may run every group's start scripts before it answers. */
  #allGroupsTimeoutMs(): number {
    return this.#ctx.config.groups.reduce((sum, g) => sum + groupOperationTimeoutMs(g), GROUP_OPERATION_MARGIN_MS);
  }

  async #activate(cause: tandem.v1.Cause): Promise<void> {
    const activate = ServiceAction.SERVICE_ACTION_ACTIVATE;
    await Promise.all([
      this.#service('rc', activate, cause, this.#allGroupsTimeoutMs()),
      this.#service('rm', activate, cause, SHORT_TIMEOUT_MS),
    ]);
  }

  /** Runs one cluster command in turn: checks the state machine, drives rm and rc, then enters the new state. */
  #clusterCommand(command: ClusterCommandName): Promise<string> {
    return this.#commands.run(async () => {
      const next = clusterTransition(this.#state, command);
      this.#busy = command;
      try {
        switch (command) {
          case 'stop':
            await this.#service('rm', ServiceAction.SERVICE_ACTION_DEACTIVATE, Cause.CAUSE_CLUSTER_STOP, SHORT_TIMEOUT_MS);
            await this.#service('rc', ServiceAction.SERVICE_ACTION_DEACTIVATE, Cause.CAUSE_CLUSTER_STOP, this.#allGroupsTimeoutMs());
            break;
          case 'suspend':
            await this.#service('rm', ServiceAction.SERVICE_ACTION_SUSPEND, Cause.CAUSE_OPERATOR, SHORT_TIMEOUT_MS);
            await this.#service('rc', ServiceAction.SERVICE_ACTION_SUSPEND, Cause.CAUSE_OPERATOR, SHORT_TIMEOUT_MS);
            break;
          case 'start':
          case 'resume':
            await this.#activate(Cause.CAUSE_OPERATOR);
            break;
        }
      } catch (err) {
        const e = toTandemError(err);
        const after = command === 'stop' ? await this.#reactivateMonitors() : '';
        throw new TandemError(e.code, `cluster ${command} failed: ${e.message}${after}`, e.details, { cause: e });
      } finally {
        this.#busy = undefined;
      }
      const { alert, message } = ENTERED[command];
      this.#enter(next, alert, message);
      return message;
    });
  }

  /**
   * A failed `cluster stop` leaves the service online: rm, deactivated first, must monitor again.
   * Best effort; returns what happened, for the caller's error message.
   */
  async #reactivateMonitors(): Promise<string> {
    try {
      await this.#service('rm', ServiceAction.SERVICE_ACTION_ACTIVATE, Cause.CAUSE_OPERATOR, SHORT_TIMEOUT_MS);
      return '; monitors reactivated';
    } catch (err) {
      const message = toTandemError(err).message;
      this.#ctx.log.error(`cluster stop failed and monitors could not be reactivated: ${message}`);
      return `; monitors could not be reactivated: ${message}`;
    }
  }

  async #cluster(cmd: tandem.v1.ClusterCommand): Promise<ReplyBody> {
    if (cmd.action === ClusterAction.CLUSTER_ACTION_SHUTDOWN) {
      return { ack: { message: cmd.local ? await this.#shutdownHere(cmd.reboot) : await this.#shutdownCluster(cmd.reboot) } };
    }
    const command = CLUSTER_COMMANDS.get(cmd.action);
    if (!command) throw new TandemError('BAD_REQUEST', 'cluster command without a valid action');
    return { ack: { message: await this.#clusterCommand(command) } };
  }

  /**
   * `tandem cluster shutdown [--reboot]`: every other server stops its cluster service and shuts
   * down (in parallel), then this one. Servers that cannot be reached are reported, not waited for.
   */
  async #shutdownCluster(reboot: boolean): Promise<string> {
    const { config, server } = this.#ctx;
    const others = config.servers.map((s) => s.name).filter((n) => n !== server);
    const results = await Promise.all(
      others.map(async (peer) => {
        try {
          const body = { node: peer, cluster: { action: ClusterAction.CLUSTER_ACTION_SHUTDOWN, local: true, reboot } };
          const reply = await this.#membership!.call(peer, body, this.#allGroupsTimeoutMs());
          return { peer, ok: true, line: `${peer}: ${reply.ack?.message ?? 'done'}` };
        } catch (err) {
          return { peer, ok: false, line: `${peer}: ${toTandemError(err).message}` };
        }
      }),
    );
    const lines = [...results.map((r) => r.line), `${server}: ${await this.#shutdownHere(reboot)}`];
    const failed = results.filter((r) => !r.ok).map((r) => r.peer);
    if (failed.length > 0) throw new TandemError('UNAVAILABLE', `cluster shutdown incomplete (${failed.join(', ')}): ${lines.join('; ')}`);
    return lines.join('; ');
  }

  /** This server's part of a shutdown: its cluster service stops (every group here stops), then the machine goes down. */
  async #shutdownHere(reboot: boolean): Promise<string> {
    const kind = reboot ? 'reboot' : 'shutdown';
    try {
      await this.#stopClusterService();
    } catch (err) {
      // The machine going down stops the daemons, and rc stops the groups on its way out.
      this.#ctx.log.error(`cluster stop before ${kind} failed: ${toTandemError(err).message}; going on`);
    }
    // An operator's shutdown is not a final action: the reboot limit does not count it.
    const done = this.#runOsAction(kind);
    this.#ctx.log.warn(`${kind} asked by an operator: ${done}`);
    return `cluster service stopped, ${done}`;
  }

  /**
   * `tandem node down [NAME]`: the coordinator stops the server's groups and fails them over
   * (SERVERSHUTDOWN), then the server stops its cluster service and shuts down.
   */
  async #nodeCommand(cmd: tandem.v1.NodeCommand): Promise<ReplyBody> {
    if (cmd.action !== NodeAction.NODE_ACTION_DOWN && cmd.action !== NodeAction.NODE_ACTION_RETURN) {
      throw new TandemError('BAD_REQUEST', 'node command without a valid action');
    }
    const target = cmd.server || this.#ctx.server;
    if (!this.#ctx.config.servers.some((s) => s.name === target)) throw new TandemError('NOT_FOUND', `no server named ${target}`);
    if (cmd.action === NodeAction.NODE_ACTION_RETURN) return this.#nodeReturn(target);
    if (!this.#membership)
      throw new TandemError('REFUSED', `node down needs another server to take the groups over: this cluster has one server`);
    this.#requireOnline(`node ${target} cannot go down`);
    const coordinator = this.#coordinator(`node ${target} cannot go down`);
    const timeoutMs = this.#allGroupsTimeoutMs();
    const forwarded = { nodeCommand: { action: cmd.action, server: target, reboot: cmd.reboot } };
    const moved = await this.#toCoordinatorRc(coordinator, forwarded, timeoutMs);
    const down = { action: ClusterAction.CLUSTER_ACTION_SHUTDOWN, local: true, reboot: cmd.reboot };
    const stopped =
      target === this.#ctx.server
        ? await this.#shutdownHere(cmd.reboot)
        : ((await this.#membership.call(target, { node: target, cluster: down }, timeoutMs)).ack?.message ?? 'done');
    return { ack: { message: `${moved.ack?.message ?? 'groups moved'}; ${target}: ${stopped}` } };
  }

  /** `tandem node return NAME`: the server, waiting isolated since a start after an unclean stop, rejoins. */
  async #nodeReturn(target: string): Promise<ReplyBody> {
    if (target !== this.#ctx.server) {
      if (!this.#membership) throw new TandemError('UNAVAILABLE', `${target} cannot be reached from ${this.#ctx.server}`);
      const body = { node: target, nodeCommand: { action: NodeAction.NODE_ACTION_RETURN, server: target } };
      const reply = await this.#membership.call(target, body, SHORT_TIMEOUT_MS);
      return { ack: { message: reply.ack?.message ?? `${target} returns` } };
    }
    const resume = this.#awaitingReturn;
    if (!resume) throw new TandemError('REFUSED', `${target} is not waiting to return: it is ${this.#state}`);
    resume();
    return { ack: { message: `${target} returns to the cluster: it joins with no groups` } };
  }

  /** Group and resource commands need a running cluster service. */
  #requireOnline(what: string): void {
    if (this.#busy === 'stop') throw new TandemError('REFUSED', `${what}: cluster service is stopping`);
    if (this.#state !== 'online') throw new TandemError('REFUSED', `${what}: cluster service is ${this.#state}`);
  }

  #groupConfig(name: string): GroupConfig {
    const group = this.#ctx.config.groups.find((g) => g.name === name);
    if (!group) throw new TandemError('NOT_FOUND', `no group named ${name || '""'}`);
    return group;
  }

  /** An operator's command starts as OPERATOR whatever it claims; rm's and rc's recovery keep their own cause. */
  #cause(request: Request, claimed: tandem.v1.Cause): tandem.v1.Cause {
    const recovery = request.origin === PM2_NAMES.rm || request.origin === PM2_NAMES.rc;
    return recovery && claimed !== Cause.CAUSE_UNSPECIFIED ? claimed : Cause.CAUSE_OPERATOR;
  }

  async #forwardToRc(body: RequestBody, timeoutMs: number): Promise<ReplyBody> {
    const reply = await this.#clients.rc.call(body, { timeoutMs });
    return { ack: { message: reply.ack?.message ?? '' } };
  }

  async #group(request: Request, cmd: tandem.v1.GroupCommand): Promise<ReplyBody> {
    const group = this.#groupConfig(cmd.group);
    const verb = GroupAction[cmd.action]?.replace('GROUP_ACTION_', '').toLowerCase();
    if (cmd.action === GroupAction.GROUP_ACTION_UNSPECIFIED || !verb)
      throw new TandemError('BAD_REQUEST', `group ${group.name}: no valid action`);
    if (cmd.server && !this.#ctx.config.servers.some((s) => s.name === cmd.server)) {
      const where = cmd.action === GroupAction.GROUP_ACTION_MOVE ? 'to' : 'on';
      throw new TandemError('NOT_FOUND', `group ${group.name} cannot ${verb} ${where} ${cmd.server}: no server named ${cmd.server}`);
    }
    this.#requireOnline(`group ${group.name} cannot ${verb}`);
    const forwarded = {
      action: cmd.action,
      group: group.name,
      server: cmd.server,
      cause: this.#cause(request, cmd.cause),
      failoverLimit: cmd.failoverLimit,
    };
    // Several servers: the coordinator's rc plans every group operation.
    const coordinator = this.#coordinator(`group ${group.name} cannot ${verb}`);
    return this.#toCoordinatorRc(coordinator, { group: forwarded }, groupOperationTimeoutMs(group));
  }

  /** The coordinator in this server's view (this one, alone); none yet is refused with `what`. */
  #coordinator(what: string): string {
    const coordinator = this.#membership ? this.#tracker.view?.coordinator : this.#ctx.server;
    if (!coordinator) throw new TandemError('UNAVAILABLE', `${what}: there is no coordinator yet (no online server)`);
    return coordinator;
  }

  /** To the coordinator's rc: here, or over the link to its node manager (#fromPeer). */
  async #toCoordinatorRc(coordinator: string, body: RequestBody, timeoutMs: number): Promise<ReplyBody> {
    if (coordinator === this.#ctx.server) return this.#forwardToRc(body, timeoutMs);
    const reply = await this.#membership!.call(coordinator, body, timeoutMs);
    return { ack: { message: reply.ack?.message ?? '' } };
  }

  /** The coordinator's rc orders a step on another server: nm carries it over the link. */
  async #order(order: tandem.v1.GroupOrder): Promise<ReplyBody> {
    const group = this.#groupConfig(order.group);
    if (!this.#membership) throw new TandemError('REFUSED', 'orders go to other servers: this cluster has one server');
    if (order.server === this.#ctx.server) return this.#forwardToRc({ order }, groupOperationTimeoutMs(group));
    const reply = await this.#membership.call(order.server, { order }, groupOperationTimeoutMs(group));
    return { ack: { message: reply.ack?.message ?? '' } };
  }

  async #resource(request: Request, cmd: tandem.v1.ResourceCommand): Promise<ReplyBody> {
    const group = this.#groupConfig(cmd.group);
    if (!group.resources.some((r) => r.name === cmd.resource)) {
      throw new TandemError('NOT_FOUND', `no resource named ${cmd.resource || '""'} in group ${group.name}`);
    }
    const verb = ResourceAction[cmd.action]?.replace('RESOURCE_ACTION_', '').toLowerCase();
    if (cmd.action === ResourceAction.RESOURCE_ACTION_UNSPECIFIED || !verb) {
      throw new TandemError('BAD_REQUEST', `resource ${group.name}/${cmd.resource}: no valid action`);
    }
    this.#requireOnline(`resource ${group.name}/${cmd.resource} cannot ${verb}`);
    const forwarded = { action: cmd.action, group: group.name, resource: cmd.resource, cause: this.#cause(request, cmd.cause) };
    return this.#forwardToRc({ resource: forwarded }, groupOperationTimeoutMs(group));
  }

  async #monitor(cmd: tandem.v1.MonitorCommand): Promise<ReplyBody> {
    if (cmd.action === MonitorAction.MONITOR_ACTION_UNSPECIFIED || MonitorAction[cmd.action] === undefined) {
      throw new TandemError('BAD_REQUEST', 'monitor command without a valid action');
    }
    const unknown = cmd.names.filter((n) => !this.#ctx.config.monitors.some((m) => m.name === n));
    if (unknown.length > 0) throw new TandemError('NOT_FOUND', `no monitor named ${unknown.join(', ')}`);
    const reply = await this.#clients.rm.call({ monitor: { action: cmd.action, names: cmd.names } }, { timeoutMs: SHORT_TIMEOUT_MS });
    return { ack: { message: reply.ack?.message ?? '' } };
  }

  // ---- configuration, alerts, logs --------------------------------------------------------

  async #config(request: Request, cmd: tandem.v1.ConfigRequest): Promise<ReplyBody> {
    const path = this.#ctx.configPath;
    switch (cmd.action) {
      case ConfigAction.CONFIG_ACTION_DIFF: {
        const v = validateConfigText(cmd.yaml);
        if (!v.ok) return { config: { problems: v.problems } };
        return { config: { ...diffConfigs(this.#ctx.config, v.config), generation: this.#generation } };
      }
      case ConfigAction.CONFIG_ACTION_APPLY:
        return this.#applyOnCoordinator(request, cmd);
      case ConfigAction.CONFIG_ACTION_INSTALL: {
        // Only another node manager, during its apply: an operator applies, which installs everywhere.
        if (request.origin !== PM2_NAMES.nm)
          throw new TandemError('REFUSED', 'install is part of `tandem config apply`, not a command of its own');
        installConfig(path, this.#ctx.paths.state, cmd.yaml, cmd.generation);
        this.#generation = cmd.generation;
        this.#ctx.log.warn(`configuration generation ${cmd.generation} installed in ${path}; it takes effect when the daemons restart`);
        return { config: { path, generation: cmd.generation } };
      }
      case ConfigAction.CONFIG_ACTION_SHOW: {
        let yaml: string;
        try {
          yaml = readFileSync(path, 'utf8');
        } catch (err) {
          throw new TandemError('NOT_FOUND', `cannot read configuration ${path}: ${(err as Error).message}`);
        }
        return { config: { yaml, path, generation: this.#generation } };
      }
      case ConfigAction.CONFIG_ACTION_VALIDATE: {
        const v = validateConfigText(cmd.yaml);
        return { config: { problems: v.ok ? [] : v.problems } };
      }
      default:
        throw new TandemError('BAD_REQUEST', 'config request without a valid action');
    }
  }

  /**
   * `tandem config apply` runs on the coordinator's node manager, one at a time: two operators
   * applying at once get two generations one after the other, never two files under one number.
   */
  async #applyOnCoordinator(request: Request, cmd: tandem.v1.ConfigRequest): Promise<ReplyBody> {
    const { yaml } = cmd;
    const coordinator = this.#coordinator('configuration not applied');
    if (coordinator === this.#ctx.server) {
      return { config: await this.#applies.run(() => this.#applyConfig(yaml)) };
    }
    // Forwarded once only: two servers that disagree about the coordinator must not bounce it.
    // (`tandem --node` also arrives over the link, as the target's own CLI's: that one is sent on.)
    if (cmd.forwarded) {
      throw new TandemError(
        'UNAVAILABLE',
        `configuration not applied: ${this.#ctx.server} is not the coordinator (${coordinator} is, as seen here): run the apply again`,
      );
    }
    const timeoutMs = remainingMs(request, 3 * SHORT_TIMEOUT_MS);
    const forwarded = { node: coordinator, config: { action: ConfigAction.CONFIG_ACTION_APPLY, yaml, forwarded: true } };
    const reply = await this.#membership!.call(coordinator, forwarded, timeoutMs);
    return { config: reply.config ?? {} };
  }

  /**
   * Applies a configuration from here, the coordinator (or the only server): validated and
   * compared here, then installed on every server with the next generation, this one last. Refused while a server cannot be reached: it would be left on
   * the old generation while the others move on (DESIGN.md 6.6).
   */
  async #applyConfig(yaml: string): Promise<tandem.v1.ConfigReply.$Properties> {
    const { config, server, configPath, paths, log, alerts } = this.#ctx;
    const v = validateConfigText(yaml);
    if (!v.ok) return { problems: v.problems };
    const diff = diffConfigs(config, v.config);
    if (diff.level === 'none') return { ...diff, generation: this.#generation, servers: [] };
    if (!v.config.servers.some((s) => s.name === server)) {
      throw new TandemError(
        'REFUSED',
        `the new configuration does not list ${server}, the coordinator, which applies it: stop the cluster service on ${server} first (another server then coordinates), then apply`,
      );
    }
    const peers = this.peers();
    const away = peers.filter((p) => p.reach !== 'reachable').map((p) => p.server);
    if (away.length > 0) {
      throw new TandemError(
        'REFUSED',
        `configuration not applied: ${away.join(', ')} cannot be reached, and would be left on generation ${this.#generation} while the others move on (bring ${away.length > 1 ? 'them' : 'it'} back, or remove ${away.length > 1 ? 'them' : 'it'} from the file)`,
      );
    }
    // Above every generation installed anywhere, and above one issued here that only some servers took.
    const generation = nextGeneration([this.#generation, this.#issued, ...peers.map((p) => p.reported?.configGeneration ?? 0)]);
    this.#issued = generation;
    const installed: string[] = [];
    const failed: string[] = [];
    await Promise.all(
      peers.map(async (p) => {
        try {
          const body = { node: p.server, config: { action: ConfigAction.CONFIG_ACTION_INSTALL, yaml, generation } };
          await this.#membership!.call(p.server, body, SHORT_TIMEOUT_MS);
          installed.push(p.server);
        } catch (err) {
          failed.push(`${p.server}: ${toTandemError(err).message}`);
        }
      }),
    );
    if (failed.length > 0) {
      throw new TandemError(
        'UNAVAILABLE',
        `configuration generation ${generation} installed on ${installed.join(', ') || 'no other server'} but not on ${failed.join('; ')}; ${server} kept generation ${this.#generation}: run the apply again`,
      );
    }
    installConfig(configPath, paths.state, yaml, generation);
    this.#generation = generation;
    installed.push(server);
    const servers = config.servers.map((s) => s.name).filter((n) => installed.includes(n));
    alerts.raise('TND-NM-0030', `configuration generation ${generation} applied on ${servers.join(', ')} (${diff.level})`, {
      generation: String(generation),
      level: diff.level,
    });
    log.warn(`configuration generation ${generation} applied: ${diff.changes.join('; ')}`);
    return { ...diff, generation, servers, path: configPath };
  }

  #events(cmd: tandem.v1.EventsRequest): ReplyBody {
    const limit = Math.min(cmd.limit || 100, EVENTS_MAX);
    const alerts = readAlerts(this.#ctx.paths.alerts, limit).map((a) => ({
      id: a.id,
      timeMs: a.timeMs,
      severity: a.severity,
      server: a.server,
      daemon: a.daemon,
      message: a.message,
      details: a.details,
    }));
    return { events: { alerts } };
  }

  async #logsCollect(cmd: tandem.v1.LogsCollectRequest): Promise<ReplyBody> {
    const { paths, server, configPath } = this.#ctx;
    const outputPath = cmd.outputPath || defaultArchivePath(paths.logs, server, Date.now());
    const statusJson = JSON.stringify(clusterStatusToJson(v1.ClusterStatus.create(await this.status())), null, 2);
    const bytes = await collectLogs({ logsDir: paths.logs, configPath, statusJson, outputPath });
    this.#ctx.log.info('logs collected', { path: outputPath, bytes });
    return { logs: { path: outputPath, bytes } };
  }

  // ---- final actions ----------------------------------------------------------------------

  /**
   * Checks the request, records the alert and answers at once; the action runs afterwards. The
   * caller is rc or rm, and the action asks rc or rm in turn: waiting here could deadlock them.
   */
  #finalAction(request: Request, cmd: tandem.v1.FinalActionRequest): ReplyBody {
    const action = cmd.action as NmFinalAction;
    if (!NM_FINAL_ACTIONS.includes(action)) {
      throw new TandemError('BAD_REQUEST', `unknown final action "${cmd.action}" (tandem-nm does ${NM_FINAL_ACTIONS.join(', ')})`);
    }
    const about = cmd.group ? ` for group ${cmd.group}` : '';
    this.#ctx.alerts.raise('TND-NM-0010', `final action ${action}${about}: ${cmd.reason || 'no reason given'}`, {
      action,
      group: cmd.group,
      source: cmd.source,
      origin: request.origin,
    });
    void this.#runFinalAction(action, cmd).catch((err: unknown) =>
      this.#ctx.log.error(`final action ${action}${about} failed: ${toTandemError(err).message}`),
    );
    return { ack: { message: `final action ${action} accepted` } };
  }

  async #runFinalAction(action: NmFinalAction, cmd: tandem.v1.FinalActionRequest): Promise<void> {
    switch (action) {
      case 'stop-cluster-service':
        await this.#stopClusterService();
        return;
      case 'stop-cluster-service-and-shutdown':
      case 'stop-cluster-service-and-reboot':
        try {
          await this.#stopClusterService();
        } catch (err) {
          // The OS shutdown stops the daemons, and rc stops the groups on its way out.
          this.#ctx.log.error(`cluster stop before ${action} failed: ${toTandemError(err).message}; going on`);
        }
        this.#osActionWithinLimit(action === 'stop-cluster-service-and-reboot' ? 'reboot' : 'shutdown');
        return;
      case 'emergency':
        await this.#requestEmergency(cmd);
        return;
    }
  }

  /**
   * Hands the emergency to the guard, asking again every GUARD_RETRY_MS while it restarts, for up
   * to the stall limit. A guard that never answers must not drop the emergency: nm then raises the
   * alert and exits like a crash, and the guard fences the server when it sees nm gone.
   */
  async #requestEmergency(cmd: tandem.v1.FinalActionRequest): Promise<void> {
    const limitMs = this.#ctx.config.cluster.stallLimitMs;
    const deadline = Date.now() + limitMs;
    for (let attempts = 1; ; attempts += 1) {
      try {
        // Each attempt gets at least one retry interval, so the last one, at the deadline, can still be answered.
        const timeoutMs = Math.min(PING_TIMEOUT_MS, Math.max(GUARD_RETRY_MS, deadline - Date.now()));
        await this.#clients.guard.call({ finalAction: cmd }, { timeoutMs });
        if (attempts > 1) this.#ctx.log.warn(`emergency reached tandem-guard after ${attempts} attempts`);
        return;
      } catch (err) {
        const left = deadline - Date.now();
        if (left <= 0) {
          const message = `emergency could not reach tandem-guard in ${limitMs} ms (${attempts} attempts, last: ${toTandemError(err).message}); tandem-nm exits so that the guard fences this server`;
          this.#ctx.alerts.raise('TND-NM-0013', message, { action: 'emergency', group: cmd.group, source: cmd.source });
          this.#ctx.log.error(message);
          this.#exitFatal();
          return;
        }
        await sleep(Math.min(GUARD_RETRY_MS, left));
      }
    }
  }

  /** Alerts once when the guard stops answering, and logs once when it answers again. */
  async #pingGuard(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#clients.guard.call({ ping: {} }, { timeoutMs: PING_TIMEOUT_MS });
      if (this.#guardLost) this.#ctx.log.info('tandem-guard answers again');
      this.#guardLost = false;
    } catch (err) {
      if (this.#closed || this.#guardLost) return;
      this.#guardLost = true;
      this.#ctx.alerts.raise(
        'TND-NM-0012',
        `tandem-guard does not answer (${toTandemError(err).message}): the core daemons are not watched and an emergency could not be handed over`,
      );
    }
  }

  async #stopClusterService(): Promise<void> {
    if (this.#state === 'stopped' && this.#busy === undefined) return;
    try {
      await this.#clusterCommand('stop');
    } catch (err) {
      // Another stop got there first: the service is stopped, which is what was asked.
      if (!(err instanceof TandemError && err.code === 'CONFLICT' && this.#state === 'stopped')) throw err;
    }
  }

  #osActionWithinLimit(kind: 'shutdown' | 'reboot'): void {
    const { paths, config, alerts, log } = this.#ctx;
    const path = rebootHistoryPath(paths.state);
    let decision: RebootDecision;
    try {
      decision = decideReboot(loadRebootHistory(path), Date.now(), config.cluster.rebootLimit);
    } catch (err) {
      // Without a trustworthy count, staying up is the side that cannot loop.
      decision = { allowed: false, history: { count: 0, lastMs: 0 }, reason: toTandemError(err).message };
    }
    if (!decision.allowed) {
      alerts.raise('TND-NM-0011', `${kind} skipped: ${decision.reason}; the cluster service stays stopped`);
      return;
    }
    // The count is on disk before the machine goes down, so the next boot sees it.
    saveRebootHistory(path, decision.history);
    const done = this.#runOsAction(kind);
    log.warn(`final action ${kind}: ${done} (${decision.reason})`);
  }

  // ---- startup ------------------------------------------------------------------------------

  async #waitForDaemons(daemons: PeerDaemon[]): Promise<void> {
    const deadline = Date.now() + STARTUP_PING_DEADLINE_MS;
    let waiting = daemons;
    for (;;) {
      const answered = await Promise.all(
        waiting.map((d) =>
          this.#clients[d].call({ ping: {} }, { timeoutMs: PING_TIMEOUT_MS }).then(
            () => true,
            () => false,
          ),
        ),
      );
      waiting = waiting.filter((_, i) => !answered[i]);
      if (waiting.length === 0) return;
      if (this.#closed) throw new TandemError('UNAVAILABLE', 'tandem-nm is stopping');
      if (Date.now() >= deadline) {
        const names = waiting.map((d) => PM2_NAMES[d]).join(', ');
        throw new TandemError('UNAVAILABLE', `${names} did not answer within ${STARTUP_PING_DEADLINE_MS} ms`);
      }
      await sleep(STARTUP_POLL_MS);
    }
  }

  /**
   * Several servers and the previous life of this server did not stop cleanly (a power cut, a
   * crash, a fence): unless `cluster.autoReturn` is set it stays isolated — hb and the node
   * manager link run, nothing is started — until an operator runs `tandem node return NAME`
   * (DESIGN.md 4).
   */
  async #waitForReturn(): Promise<void> {
    const { config, server, alerts } = this.#ctx;
    if (config.cluster.autoReturn) return;
    alerts.raise(
      'TND-NM-0023',
      `${server} went down without a clean stop: it stays out of the cluster until \`tandem node return ${server}\` (or set cluster.autoReturn)`,
    );
    await new Promise<void>((resolve) => (this.#awaitingReturn = resolve));
    this.#awaitingReturn = undefined;
    if (this.#closed) throw new TandemError('UNAVAILABLE', 'tandem-nm is stopping');
    this.#ctx.log.warn(`${server} returns to the cluster`);
  }

  /** One server sees every server at once; otherwise wait until hb hears them all or the startup wait ends. */
  async #waitForServers(): Promise<void> {
    const { config, server } = this.#ctx;
    const others = config.servers.map((s) => s.name).filter((n) => n !== server);
    if (others.length === 0) return;
    const deadline = Date.now() + config.cluster.startupWaitMs;
    while (Date.now() < deadline) {
      if (this.#closed) throw new TandemError('UNAVAILABLE', 'tandem-nm is stopping');
      try {
        const reply = await this.#clients.hb.call({ status: {} }, { timeoutMs: PING_TIMEOUT_MS });
        const online = new Set((reply.servers?.servers ?? []).filter((s) => s.state === 'online').map((s) => s.name));
        if (others.every((n) => online.has(n))) return;
      } catch (err) {
        this.#ctx.log.debug(`startup wait: tandem-hb: ${toTandemError(err).message}`);
      }
      await sleep(Math.min(1000, Math.max(0, deadline - Date.now())));
    }
    this.#ctx.log.info(`startup wait of ${config.cluster.startupWaitMs} ms passed without hearing every server`);
  }
}
