/**
 * tandem-rm's state and request handlers: one check loop per monitor (never two checks of one
 * monitor at once), the monitor states, the recovery ladder's effects, and the service state
 * that nm drives. The effects on other daemons go through RcApi/NmApi; timers through Timers.
 */
import { TandemError, toTandemError, type AlertId, type Config, type MonitorConfig, type RpcHandler } from '@tandem/core';
import { v1, type Request, type tandem } from '@tandem/protocol';
import type { NmApi, RcApi } from './clients.js';
import { nextRecoveryStep, type LadderDecision } from './ladder.js';
import { createMonitor } from './monitors/index.js';
import type { CheckResult, Monitor, MonitorEnv } from './monitors/monitor.js';
import { localResource, recoveryFacts, watchedActive, type GroupFacts } from './targets.js';

export type MonitorState = 'normal' | 'warning' | 'error' | 'suspended' | 'off';

/** The cluster service on this server as nm drives it: monitors only check while `active`. */
export type ServiceState = 'stopped' | 'active' | 'suspended';

export interface Log {
  info(message: string, meta?: Record<string, unknown>): unknown;
  warn(message: string, meta?: Record<string, unknown>): unknown;
  error(message: string, meta?: Record<string, unknown>): unknown;
}

export interface AlertSink {
  raise(id: AlertId, message: string, details?: Record<string, string>): unknown;
}

export interface EventSink {
  publish(kind: string, subject: string, state: string, message?: string, details?: Record<string, string>): void;
}

/** Runs `fn` after `ms`; returns a cancel function. */
export interface Timers {
  after(ms: number, fn: () => void): () => void;
}

export const realTimers: Timers = {
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
};

export interface ResourceMonitorDeps {
  server: string;
  /** groups: the resources monitors may read the configuration of (fip) */
  config: Pick<Config, 'monitors'> & Partial<Pick<Config, 'groups'>>;
  rc: RcApi;
  nm: NmApi;
  alerts: AlertSink;
  events: EventSink;
  log: Log;
  /** monotonic milliseconds (start delays, check durations) */
  now?: () => number;
  timers?: Timers;
  makeMonitor?: (config: MonitorConfig, env: MonitorEnv) => Monitor;
}

type MonitorStatusInit = tandem.v1.MonitorStatus.$Properties;

interface Runtime {
  config: MonitorConfig;
  monitor: Monitor;
  state: MonitorState;
  operatorSuspended: boolean;
  consecutiveFailures: number;
  reactivations: number;
  failovers: number;
  finalActionDone: boolean;
  /** rc refused a failover in this episode because no other server can host the group: the rung is skipped */
  failoverRefused: boolean;
  /** between the error and the next good check */
  inError: boolean;
  /** a delay warning was raised in this slow episode */
  warned: boolean;
  /** the watched target was active at the last cycle (a change starts the start delay) */
  wasActive: boolean;
  /** no check before this monotonic time */
  notBeforeMs: number;
  lastResult: string;
  lastCheckMs: number;
  lastDurationMs: number;
  lastDecision: string;
  /** bumped when the loop stops or restarts: an older cycle's result is dropped */
  epoch: number;
  /** the cycle in flight, if any */
  running: Promise<number | undefined> | undefined;
  cancelTimer: (() => void) | undefined;
  abortCheck: AbortController | undefined;
}

const messageOf = (err: unknown): string => toTandemError(err).message;

export class ResourceMonitor {
  readonly #deps: ResourceMonitorDeps;
  readonly #now: () => number;
  readonly #timers: Timers;
  readonly #monitors = new Map<string, Runtime>();
  #service: ServiceState = 'stopped';
  #groups: GroupFacts[] = [];
  #groupsInFlight: Promise<GroupFacts[] | undefined> | undefined;
  #rcReachable = true;

  constructor(deps: ResourceMonitorDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? (() => performance.now());
    this.#timers = deps.timers ?? realTimers;
    const env: MonitorEnv = {
      resource: (name) => localResource(this.#groups, name, deps.server),
      resourceConfig: (name) => deps.config.groups?.flatMap((g) => g.resources).find((r) => r.name === name),
    };
    const make = deps.makeMonitor ?? createMonitor;
    for (const config of deps.config.monitors) {
      this.#monitors.set(config.name, {
        config,
        monitor: make(config, env),
        state: 'off',
        operatorSuspended: false,
        consecutiveFailures: 0,
        reactivations: 0,
        failovers: 0,
        finalActionDone: false,
        failoverRefused: false,
        inError: false,
        warned: false,
        wasActive: false,
        notBeforeMs: 0,
        lastResult: '',
        lastCheckMs: 0,
        lastDurationMs: 0,
        lastDecision: '',
        epoch: 0,
        running: undefined,
        cancelTimer: undefined,
        abortCheck: undefined,
      });
    }
  }

  get service(): ServiceState {
    return this.#service;
  }

  readonly handle: RpcHandler = async (request: Request) => {
    switch (request.body) {
      case 'status':
        return { monitors: { monitors: this.statuses() } };
      case 'service':
        return { ack: { message: this.#serviceCommand(request.service?.action ?? 0) } };
      case 'monitor':
        return { ack: { message: this.#monitorCommand(request.monitor?.action ?? 0, request.monitor?.names ?? []) } };
      default:
        throw new TandemError('BAD_REQUEST', `tandem-rm does not serve ${request.body ?? 'empty'} requests`);
    }
  };

  // ---- service (nm) --------------------------------------------------------------------------

  /** The cluster service runs: every monitor not suspended by the operator starts checking. */
  activate(): void {
    if (this.#service === 'active') return;
    this.#service = 'active';
    for (const m of this.#monitors.values()) {
      if (m.operatorSuspended) this.#setState(m, 'suspended', 'suspended by the operator');
      else this.#startLoop(m);
    }
  }

  /** Cluster suspended: no checks, groups keep running, counters kept. */
  suspend(): void {
    this.#service = 'suspended';
    for (const m of this.#monitors.values()) {
      this.#stopLoop(m);
      this.#setState(m, 'suspended', 'cluster service suspended');
    }
  }

  /** Cluster service stopped: monitors off, and the next activation starts from clean counters. */
  deactivate(): void {
    this.#service = 'stopped';
    for (const m of this.#monitors.values()) {
      this.#stopLoop(m);
      this.#resetCounters(m);
      m.inError = false;
      m.warned = false;
      this.#setState(m, 'off', 'cluster service stopped');
    }
  }

  #serviceCommand(action: tandem.v1.ServiceAction): string {
    switch (action) {
      case v1.ServiceAction.SERVICE_ACTION_ACTIVATE:
        this.activate();
        return 'monitors active';
      case v1.ServiceAction.SERVICE_ACTION_SUSPEND:
        this.suspend();
        return 'monitors suspended';
      case v1.ServiceAction.SERVICE_ACTION_DEACTIVATE:
        this.deactivate();
        return 'monitors off';
      default:
        throw new TandemError('BAD_REQUEST', `unknown service action ${action}`);
    }
  }

  // ---- operator (monitor SUSPEND/RESUME/RESET) ------------------------------------------------

  #select(names: readonly string[]): Runtime[] {
    if (names.length === 0) return [...this.#monitors.values()];
    const unknown = names.filter((n) => !this.#monitors.has(n));
    if (unknown.length > 0) {
      throw new TandemError('NOT_FOUND', `no monitor named ${unknown.join(', ')}`, { known: [...this.#monitors.keys()].join(',') });
    }
    return names.map((n) => this.#monitors.get(n) as Runtime);
  }

  suspendMonitors(names: readonly string[]): string[] {
    const selected = this.#select(names);
    for (const m of selected) {
      m.operatorSuspended = true;
      this.#stopLoop(m);
      if (this.#service === 'active') this.#setState(m, 'suspended', 'suspended by the operator');
    }
    return selected.map((m) => m.config.name);
  }

  resumeMonitors(names: readonly string[]): string[] {
    const selected = this.#select(names);
    for (const m of selected) {
      if (!m.operatorSuspended) continue;
      m.operatorSuspended = false;
      if (this.#service === 'active') this.#startLoop(m);
    }
    return selected.map((m) => m.config.name);
  }

  resetMonitors(names: readonly string[]): string[] {
    const selected = this.#select(names);
    for (const m of selected) {
      this.#resetCounters(m);
      this.#deps.log.info('recovery counters reset by the operator', { monitor: m.config.name });
    }
    return selected.map((m) => m.config.name);
  }

  #monitorCommand(action: tandem.v1.MonitorAction, names: readonly string[]): string {
    switch (action) {
      case v1.MonitorAction.MONITOR_ACTION_SUSPEND:
        return `suspended: ${this.suspendMonitors(names).join(', ')}`;
      case v1.MonitorAction.MONITOR_ACTION_RESUME:
        return `resumed: ${this.resumeMonitors(names).join(', ')}`;
      case v1.MonitorAction.MONITOR_ACTION_RESET:
        return `counters reset: ${this.resetMonitors(names).join(', ')}`;
      default:
        throw new TandemError('BAD_REQUEST', `unknown monitor action ${action}`);
    }
  }

  // ---- status ---------------------------------------------------------------------------------

  statuses(): MonitorStatusInit[] {
    return [...this.#monitors.values()].map((m) => ({
      name: m.config.name,
      type: m.config.type,
      state: m.state,
      target: m.config.target ?? m.config.recovery.target,
      consecutiveFailures: m.consecutiveFailures,
      reactivations: m.reactivations,
      failovers: m.failovers,
      lastResult: m.lastResult,
      lastCheckMs: m.lastCheckMs,
      lastDurationMs: m.lastDurationMs,
      finalActionDone: m.finalActionDone,
    }));
  }

  /** An rc event arrived: monitors waiting for their target look again at once. */
  hint(): void {
    if (this.#service !== 'active') return;
    for (const m of this.#monitors.values()) {
      if (m.state === 'off' && !m.running && m.cancelTimer) this.#schedule(m, 0);
    }
  }

  async stop(): Promise<void> {
    for (const m of this.#monitors.values()) this.#stopLoop(m);
  }

  // ---- the check loop -------------------------------------------------------------------------

  #startLoop(m: Runtime): void {
    this.#stopLoop(m);
    m.wasActive = false; // the start delay counts from now
    this.#schedule(m, 0);
  }

  #stopLoop(m: Runtime): void {
    m.epoch++;
    m.cancelTimer?.();
    m.cancelTimer = undefined;
    m.abortCheck?.abort(new Error('monitor stopped'));
    m.abortCheck = undefined;
  }

  #schedule(m: Runtime, delayMs: number): void {
    m.cancelTimer?.();
    const epoch = m.epoch;
    m.cancelTimer = this.#timers.after(Math.max(0, delayMs), () => {
      void (async () => {
        // A cycle of an earlier loop (stopped, then restarted) may still be finishing: never overlap it.
        while (m.running) await m.running;
        if (epoch !== m.epoch) return;
        const next = await this.runCycle(m.config.name);
        if (epoch === m.epoch && next !== undefined) this.#schedule(m, next);
      })();
    });
  }

  /**
   * One cycle of one monitor: learn from rc whether its target is active, check it (after the
   * start delay), update its state and run the ladder on an error. Resolves with the delay until
   * the next cycle, or undefined when the monitor is not running (service not active, suspended,
   * or a cycle already in flight). The timer loop calls it; tests may call it directly.
   */
  async runCycle(name: string): Promise<number | undefined> {
    const m = this.#select([name])[0] as Runtime;
    if (this.#service !== 'active' || m.operatorSuspended || m.running) return undefined;
    const running = this.#cycle(m, m.epoch)
      .catch((err: unknown) => {
        this.#deps.log.error('monitor cycle failed', { monitor: name, error: messageOf(err) });
        return m.config.intervalMs;
      })
      .finally(() => {
        m.running = undefined;
      });
    m.running = running;
    return running;
  }

  async #cycle(m: Runtime, epoch: number): Promise<number | undefined> {
    const { config } = m;
    const groups = await this.#refreshGroups();
    if (this.#stale(m, epoch)) return undefined;
    if (groups === undefined) return config.intervalMs; // rc is silent: nothing is known, nothing is decided

    const active = config.when === 'always' || watchedActive(config, groups, this.#deps.server);
    if (!active) {
      m.wasActive = false;
      m.consecutiveFailures = 0;
      this.#setState(m, 'off', `target ${config.target ?? config.recovery.target} is not active on this server`);
      return config.intervalMs;
    }
    if (!m.wasActive) {
      m.wasActive = true;
      m.notBeforeMs = this.#now() + config.startDelayMs;
      if (m.state === 'off' || m.state === 'suspended') this.#setState(m, m.inError ? 'error' : 'normal', 'monitoring starts');
    }
    const waitMs = m.notBeforeMs - this.#now();
    if (waitMs > 0) return Math.min(waitMs, config.intervalMs);

    const { result, durationMs } = await this.#check(m);
    if (this.#stale(m, epoch)) return undefined;
    m.lastResult = result.message;
    m.lastCheckMs = Date.now();
    m.lastDurationMs = durationMs;
    if (result.ok) this.#healthy(m, result, durationMs);
    else await this.#failed(m, result, epoch);
    return config.intervalMs;
  }

  /** The check, bounded by the monitor's timeout: a late check fails and is aborted. */
  async #check(m: Runtime): Promise<{ result: CheckResult; durationMs: number }> {
    const timeoutMs = m.config.timeoutMs;
    const abort = new AbortController();
    m.abortCheck = abort;
    const started = this.#now();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<CheckResult>((resolve) => {
      timer = setTimeout(() => {
        resolve({ ok: false, message: `no answer within ${timeoutMs} ms` });
        abort.abort(new Error('timeout'));
      }, timeoutMs);
    });
    try {
      const checked = m.monitor.check(abort.signal).catch((err: unknown) => ({ ok: false, message: messageOf(err) }));
      const result = await Promise.race([checked, late]);
      return { result, durationMs: Math.round(this.#now() - started) };
    } finally {
      clearTimeout(timer);
      if (m.abortCheck === abort) m.abortCheck = undefined;
    }
  }

  #healthy(m: Runtime, result: CheckResult, durationMs: number): void {
    const name = m.config.name;
    m.consecutiveFailures = 0;
    if (m.reactivations > 0 || m.failovers > 0 || m.finalActionDone || m.failoverRefused) {
      this.#resetCounters(m);
      this.#deps.log.info('monitor healthy again: recovery counters reset', { monitor: name });
    }
    if (m.inError) {
      m.inError = false;
      this.#deps.alerts.raise('TND-RM-0202', `monitor ${name} recovered: ${result.message}`, { monitor: name });
    }
    const warnAtMs = (m.config.timeoutMs * m.config.delayWarningPercent) / 100;
    if (durationMs > warnAtMs) {
      if (!m.warned) {
        m.warned = true;
        this.#deps.alerts.raise(
          'TND-RM-0203',
          `monitor ${name} is slow: the check took ${durationMs} ms (warning at ${Math.round(warnAtMs)} ms)`,
          {
            monitor: name,
          },
        );
      }
      this.#setState(m, 'warning', `slow: ${durationMs} ms`);
    } else {
      m.warned = false;
      this.#setState(m, 'normal', result.message);
    }
  }

  async #failed(m: Runtime, result: CheckResult, epoch: number): Promise<void> {
    const name = m.config.name;
    m.consecutiveFailures++;
    if (m.consecutiveFailures < m.config.retries + 1) {
      this.#deps.log.warn('monitor check failed', { monitor: name, failures: m.consecutiveFailures, result: result.message });
      return;
    }
    if (!m.inError) {
      m.inError = true;
      this.#deps.alerts.raise('TND-RM-0201', `monitor ${name} error: ${result.message}`, {
        monitor: name,
        target: m.config.recovery.target,
      });
    }
    this.#setState(m, 'error', result.message);
    await this.#recover(m, result.message, epoch);
  }

  // ---- the recovery ladder's effects ----------------------------------------------------------

  /**
   * The ladder's next step for a monitor in error. After every wait (rc, nm) it looks again whether
   * the loop that started it still runs: once the monitor or the cluster service was stopped or
   * suspended meanwhile, the attempt ends without another action and without touching the counters.
   */
  async #recover(m: Runtime, why: string, epoch: number): Promise<void> {
    const { config } = m;
    const recovery = config.recovery;
    const groups = await this.#refreshGroups();
    if (this.#stale(m, epoch) || groups === undefined) return;
    const facts = { ...recoveryFacts(recovery, groups, this.#deps.server), failoverPossible: !m.failoverRefused };
    const decision = nextRecoveryStep(recovery, m, facts);
    this.#logDecision(m, decision);
    const details = { monitor: config.name, target: recovery.target, group: recovery.group };

    switch (decision.step) {
      case 'none':
        return;
      case 'reactivate': {
        m.reactivations++;
        this.#deps.alerts.raise(
          'TND-RM-0204',
          `monitor ${config.name}: restarting ${recovery.kind} ${recovery.target} (${decision.reason})`,
          details,
        );
        try {
          if (recovery.kind === 'resource') await this.#deps.rc.restartResource(recovery.group, recovery.target);
          else await this.#deps.rc.restartGroup(recovery.group);
        } catch (err) {
          this.#deps.log.error('reactivation failed', { ...details, error: messageOf(err) });
        }
        if (this.#stale(m, epoch)) return;
        this.#afterAction(m);
        return;
      }
      case 'failover': {
        try {
          await this.#deps.rc.failoverGroup(recovery.group);
        } catch (err) {
          if (this.#stale(m, epoch)) return;
          const e = toTandemError(err);
          if (e.code === 'REFUSED' && e.details.reason === 'NO_SERVER') {
            m.failoverRefused = true;
            this.#deps.alerts.raise(
              'TND-RM-0205',
              `monitor ${config.name}: failover of group ${recovery.group} skipped: ${e.message}`,
              details,
            );
            await this.#recover(m, why, epoch); // the next rung in the same episode
            return;
          }
          // rc refused for another reason (the cluster is suspended, ...) or did not answer: no escalation,
          // the failover is not counted and the next failing check asks again.
          this.#deps.log.error('failover not done: this recovery attempt ends', { ...details, code: e.code, error: e.message });
          return;
        }
        if (this.#stale(m, epoch)) return;
        m.failovers++;
        this.#deps.log.info('group failed over', { ...details, reason: decision.reason });
        this.#afterAction(m);
        return;
      }
      case 'final':
        m.finalActionDone = true;
        this.#deps.alerts.raise('TND-RM-0206', `monitor ${config.name}: final action ${recovery.finalAction} (${decision.reason})`, {
          ...details,
          action: recovery.finalAction,
        });
        await this.#finalAction(m, why);
        return;
    }
  }

  async #finalAction(m: Runtime, why: string): Promise<void> {
    const { name, recovery } = m.config;
    try {
      if (recovery.finalAction === 'none') return;
      if (recovery.finalAction === 'stop-group') await this.#deps.rc.stopGroup(recovery.group);
      else
        await this.#deps.nm.finalAction({
          action: recovery.finalAction,
          group: recovery.group,
          reason: `monitor ${name}: ${why}`,
          source: name,
        });
    } catch (err) {
      this.#deps.log.error('final action failed', { monitor: name, action: recovery.finalAction, error: messageOf(err) });
    }
  }

  /** The cycle started in `epoch` belongs to a loop that was stopped meanwhile, or the service is no longer active. */
  #stale(m: Runtime, epoch: number): boolean {
    return epoch !== m.epoch || this.#service !== 'active';
  }

  /** After a recovery action, failures count afresh and checks wait for the start delay. */
  #afterAction(m: Runtime): void {
    m.consecutiveFailures = 0;
    m.notBeforeMs = this.#now() + m.config.startDelayMs;
  }

  #logDecision(m: Runtime, decision: LadderDecision): void {
    // A monitor that stays in error asks the ladder every cycle; say the same "none" only once.
    const line = `${decision.step}: ${decision.reason}`;
    if (decision.step === 'none' && line === m.lastDecision) return;
    m.lastDecision = line;
    this.#deps.log.info('recovery decision', { monitor: m.config.name, step: decision.step, reason: decision.reason });
  }

  #resetCounters(m: Runtime): void {
    m.consecutiveFailures = 0;
    m.reactivations = 0;
    m.failovers = 0;
    m.finalActionDone = false;
    m.failoverRefused = false;
    m.lastDecision = '';
  }

  #setState(m: Runtime, state: MonitorState, message: string): void {
    if (m.state === state) return;
    const from = m.state;
    m.state = state;
    this.#deps.log.info(`monitor ${m.config.name} ${from} -> ${state}`, { monitor: m.config.name, message });
    this.#deps.events.publish('monitor', m.config.name, state, message, { from });
  }

  /** rc's group list, one request at a time; undefined while rc does not answer. */
  #refreshGroups(): Promise<GroupFacts[] | undefined> {
    this.#groupsInFlight ??= this.#deps.rc
      .groups()
      .then(
        (groups) => {
          if (!this.#rcReachable) this.#deps.log.info('tandem-rc answers again');
          this.#rcReachable = true;
          this.#groups = groups;
          return groups;
        },
        (err: unknown) => {
          if (this.#rcReachable) this.#deps.log.warn('tandem-rc does not answer: checks wait', { error: messageOf(err) });
          this.#rcReachable = false;
          return undefined;
        },
      )
      .finally(() => {
        this.#groupsInFlight = undefined;
      });
    return this.#groupsInFlight;
  }
}
