/**
 * The guard (tandem-guard): watches the five core daemons over their liveness channels and
 * runs the emergency procedure when one exits without a goodbye or stalls. It holds no state
 * of its own: after a restart it re-adopts the daemons from their registry files.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as zmq from 'zeromq';
import { PROTOCOL_REVISION, decodeLiveness, encodeGuardReply, type Liveness, type Request } from '@tandem/protocol';
import {
  DAEMONS,
  PM2_NAMES,
  TandemError,
  isAlive,
  sleep,
  tickIntervalMs,
  type CoreDaemon,
  type DaemonContext,
  type DaemonImpl,
} from '@tandem/core';
import { runEmergency, type Trigger } from './emergency.js';
import { guardWasLate, judge, type DaemonWatch } from './verdict.js';

/** `watching`: armed; `emergency`: the procedure runs; `fenced`: done, deaths are ignored until a fresh hello. */
export type GuardState = 'watching' | 'emergency' | 'fenced';

/** A check this much later than its interval means the guard itself was frozen: the silence it sees may be its own. */
const LATE_TOLERANCE_MS = 200;
/** After a disconnect, how long to look for the exit that is in progress (files close before the process is reaped). */
const EXIT_WATCH_MS = 250;
/** How long fenced daemons get to exit on their own before they are killed. */
export const FENCE_GRACE_MS = 300;
const BAD_FRAME_LOG_INTERVAL_MS = 10_000;

/** A daemon instance, as its hello introduced it. */
interface Instance {
  pid: number;
  peer: Buffer;
  stallLimitMs: number;
}

/** Whom the procedure fences: captured when it is triggered, so a daemon started afterwards is not touched. */
interface FenceTarget {
  pid: number;
  daemon: CoreDaemon;
  /** its liveness connection, if known: where the fenced reply goes */
  peer?: Buffer;
}

interface Channel {
  router: zmq.Router;
  /** routing id of the daemon's current connection (from its last valid frame) */
  peer?: Buffer;
  sending: Promise<void>;
}

export class Guard implements DaemonImpl {
  readonly #ctx: DaemonContext;
  readonly #channels = new Map<CoreDaemon, Channel>();
  readonly #watches = new Map<CoreDaemon, DaemonWatch>();
  readonly #exitWatch = new Set<CoreDaemon>();
  /** second instances that said hello while the watched one still ran */
  readonly #intruders = new Map<CoreDaemon, Instance>();
  #state: GuardState = 'watching';
  #checkTimer: NodeJS.Timeout | undefined;
  #lastCheckMs = Date.now();
  #badFrames = 0;
  #lastBadLogMs = 0;
  #intruderHellos = 0;
  #lastIntruderLogMs = 0;
  #emergencies = 0;

  readonly #checkIntervalMs: number;

  constructor(ctx: DaemonContext) {
    this.#ctx = ctx;
    this.#checkIntervalMs = tickIntervalMs(ctx.config.cluster.stallLimitMs);
  }

  get state(): GuardState {
    return this.#state;
  }

  get badFrames(): number {
    return this.#badFrames;
  }

  /** hellos from a second instance of a daemon whose first instance was still running */
  get intruderHellos(): number {
    return this.#intruderHellos;
  }

  async start(): Promise<void> {
    for (const daemon of DAEMONS) {
      const router = new zmq.Router({ linger: 0, sendHighWaterMark: 100 });
      const channel: Channel = { router, sending: Promise.resolve() };
      this.#channels.set(daemon, channel);
      router.events.on('disconnect', () => this.#onDisconnect(daemon));
      await router.bind(this.#ctx.paths.guardLive(daemon));
      void this.#receive(daemon, channel);
    }
    this.#adopt();
    this.#lastCheckMs = Date.now();
    // Deaths arrive as disconnect events at once; this periodic check of every watched pid and
    // beat age (as often as the daemons beat) finds stalls, and deaths whose event was missed.
    this.#checkTimer = setInterval(() => this.#check(), this.#checkIntervalMs);
  }

  async handle(request: Request): Promise<{ ack: { message: string } }> {
    if (request.body !== 'finalAction' || request.finalAction?.action !== 'emergency') {
      throw new TandemError(
        'BAD_REQUEST',
        `the guard serves only final_action emergency, not ${request.body === 'finalAction' ? `final_action ${request.finalAction?.action}` : request.body}`,
      );
    }
    const reason = request.finalAction.reason || `emergency requested by ${request.origin || 'an unnamed client'}`;
    if (!this.#emergency({ reason })) return { ack: { message: `emergency not started: the guard is already ${this.#state}` } };
    return { ack: { message: `emergency procedure started: ${reason}` } };
  }

  /**
   * The guard's own event loop stalled for longer than the stall limit: the whole server was
   * probably frozen (the daemons find the same on waking and exit), and the others may have
   * declared it down and taken its groups over meanwhile. It fences the server, as it would for
   * any stalled core daemon, rather than exit and leave it unwatched until pm2 restarts it.
   */
  stalled(message: string): void {
    this.#emergency({ reason: `tandem-guard ${message}: this server was frozen` });
  }

  async stop(): Promise<void> {
    clearInterval(this.#checkTimer);
    for (const c of this.#channels.values()) c.router.close();
  }

  /** Re-adopts the daemons that registered while the guard was away; one that died meanwhile is a crash. */
  #adopt(): void {
    const dead: string[] = [];
    for (const daemon of DAEMONS) {
      const reg = readRegistry(this.#registryFile(daemon));
      if (!reg) continue;
      if (isAlive(reg.pid)) {
        this.#watches.set(daemon, {
          daemon,
          pid: reg.pid,
          lastBeatMs: Date.now(),
          stallLimitMs: this.#ctx.config.cluster.stallLimitMs,
          state: 'running',
        });
        this.#ctx.log.info(`re-adopted ${PM2_NAMES[daemon]}`, { pid: reg.pid });
      } else {
        dead.push(`${PM2_NAMES[daemon]} (pid ${reg.pid})`);
      }
    }
    if (dead.length) this.#emergency({ reason: `${dead.join(', ')} exited while the guard was away`, alert: 'TND-GD-0901' });
  }

  async #receive(daemon: CoreDaemon, channel: Channel): Promise<void> {
    try {
      for await (const [peer, ...frames] of channel.router) {
        if (!peer) continue;
        this.#onFrames(daemon, channel, peer, frames);
      }
    } catch (err) {
      if (!channel.router.closed) this.#ctx.log.error(`liveness channel of ${PM2_NAMES[daemon]} failed`, { error: String(err) });
    }
  }

  #onFrames(daemon: CoreDaemon, channel: Channel, peer: Buffer, frames: Buffer[]): void {
    if (frames.length !== 1) return this.#countBad(daemon, `expected 1 frame, got ${frames.length}`);
    const decoded = decodeLiveness(frames[0]);
    if (!decoded.ok) return this.#countBad(daemon, decoded.reason);
    const m = decoded.message;
    if (m.revision !== PROTOCOL_REVISION) return this.#countBad(daemon, `protocol revision ${m.revision} is not ${PROTOCOL_REVISION}`);
    if (m.daemon !== daemon) return this.#countBad(daemon, `liveness message from "${m.daemon}" on the channel of ${daemon}`);
    if (!Number.isInteger(m.pid) || m.pid <= 1) return this.#countBad(daemon, `liveness message with pid ${m.pid}`);
    if (!m.kind) return this.#countBad(daemon, 'liveness message without a kind');
    if (m.kind === 'hello') return this.#onHello(daemon, channel, peer, m);
    const watch = this.#watches.get(daemon);
    if (!watch || watch.pid !== m.pid) return; // a daemon we fenced or never met: its word does not count
    // The daemon's connection may have been re-made (a guard restart, a reconnect): follow it.
    channel.peer = peer;
    if (m.kind === 'beat') {
      watch.lastBeatMs = Date.now();
    } else {
      watch.state = 'stopped';
      this.#ctx.log.info(`${PM2_NAMES[daemon]} said goodbye: its exit is planned`, { pid: m.pid, reason: m.goodbye?.reason ?? '' });
    }
  }

  #onHello(daemon: CoreDaemon, channel: Channel, peer: Buffer, m: Liveness): void {
    const stallLimitMs = m.stallLimitMs > 0 ? m.stallLimitMs : this.#ctx.config.cluster.stallLimitMs;
    const previous = this.#watches.get(daemon);
    if (previous && previous.pid !== m.pid && this.#state === 'watching') {
      // A new instance while the old one is watched: an old one that is gone is judged now.
      if (this.#checkDaemon(daemon, true)) return;
      if (previous.state === 'running' && isAlive(previous.pid)) {
        // Two instances at once is a fault. The first stays watched, so its death or stall is
        // judged as usual; the second is adopted only once the first has left as planned.
        this.#intruders.set(daemon, { pid: m.pid, peer, stallLimitMs });
        this.#intruderHellos++;
        const now = Date.now();
        if (now - this.#lastIntruderLogMs > BAD_FRAME_LOG_INTERVAL_MS) {
          this.#lastIntruderLogMs = now;
          this.#ctx.log.warn(
            `a second ${PM2_NAMES[daemon]} said hello while the first still runs: it is not watched until the first has left`,
            {
              pid: m.pid,
              watchedPid: previous.pid,
              intruderHellos: this.#intruderHellos,
            },
          );
        }
        return;
      }
    }
    this.#intruders.delete(daemon);
    this.#watch(daemon, channel, { pid: m.pid, peer, stallLimitMs });
  }

  #watch(daemon: CoreDaemon, channel: Channel, instance: Instance): void {
    const { pid, peer, stallLimitMs } = instance;
    channel.peer = peer;
    this.#watches.set(daemon, { daemon, pid, lastBeatMs: Date.now(), stallLimitMs, state: 'running' });
    this.#ctx.log.info(`${PM2_NAMES[daemon]} said hello`, { pid, stallLimitMs });
    if (this.#state === 'fenced') {
      this.#state = 'watching';
      this.#ctx.log.warn(`the guard is armed again: ${PM2_NAMES[daemon]} started (pid ${pid})`);
    }
  }

  #countBad(daemon: CoreDaemon, reason: string): void {
    this.#badFrames++;
    const now = Date.now();
    if (now - this.#lastBadLogMs > BAD_FRAME_LOG_INTERVAL_MS) {
      this.#lastBadLogMs = now;
      this.#ctx.log.warn(`bad liveness frame on the channel of ${PM2_NAMES[daemon]}: dropped`, { reason, badFrames: this.#badFrames });
    }
  }

  #registryFile(daemon: CoreDaemon): string {
    return join(this.#ctx.paths.registry, `${daemon}.json`);
  }

  /** Judges one daemon now; runs the emergency on a crash. Returns true if it did. */
  #checkDaemon(daemon: CoreDaemon, judgeStall: boolean): boolean {
    const watch = this.#watches.get(daemon);
    if (!watch || watch.state === 'stopped') return false;
    const alive = isAlive(watch.pid);
    const verdict = judge(watch, { nowMs: Date.now(), alive, registered: alive || existsSync(this.#registryFile(daemon)) });
    if (!verdict.crashed) return false;
    if (verdict.alert === 'TND-GD-0902' && !judgeStall) {
      watch.lastBeatMs = Date.now();
      return false;
    }
    return this.#emergency({ reason: verdict.reason, alert: verdict.alert });
  }

  #onDisconnect(daemon: CoreDaemon): void {
    if (this.#state !== 'watching' || this.#checkDaemon(daemon, true)) return;
    const watch = this.#watches.get(daemon);
    if (!watch || watch.state === 'stopped' || this.#exitWatch.has(daemon) || !isAlive(watch.pid)) return;
    // The connection closes while the dying process is still being torn down: look closely for a while.
    this.#exitWatch.add(daemon);
    void (async () => {
      const until = Date.now() + EXIT_WATCH_MS;
      while (Date.now() < until && this.#state === 'watching' && isAlive(watch.pid)) await sleep(1);
      this.#exitWatch.delete(daemon);
      if (this.#state === 'watching' && this.#watches.get(daemon) === watch) this.#checkDaemon(daemon, true);
    })();
  }

  #check(): void {
    const now = Date.now();
    const late = guardWasLate(this.#lastCheckMs, now, this.#checkIntervalMs, LATE_TOLERANCE_MS);
    if (late) this.#ctx.log.warn(`the guard's own check ran ${now - this.#lastCheckMs} ms apart: stalls are not judged this round`);
    this.#lastCheckMs = now;
    if (this.#state !== 'watching') return;
    for (const [daemon, watch] of this.#watches) {
      if (watch.state === 'stopped') {
        if (!isAlive(watch.pid)) {
          this.#watches.delete(daemon); // gone as planned: forget its pid before it is reused
          this.#adoptIntruder(daemon);
        }
      } else if (this.#checkDaemon(daemon, !late)) {
        return;
      }
    }
  }

  /** The second instance of a daemon whose first has left as planned is watched now, if it still runs. */
  #adoptIntruder(daemon: CoreDaemon): void {
    const intruder = this.#intruders.get(daemon);
    const channel = this.#channels.get(daemon);
    this.#intruders.delete(daemon);
    if (!intruder || !channel || !isAlive(intruder.pid)) return;
    this.#watch(daemon, channel, intruder);
  }

  /** Starts the procedure unless one ran already; the groups are killed when this returns. */
  #emergency(trigger: Trigger): boolean {
    if (this.#state !== 'watching') return false;
    this.#state = 'emergency';
    const n = ++this.#emergencies;
    let targets: FenceTarget[] = [];
    const procedure = runEmergency(this.#ctx, trigger, () => this.#fence(targets));
    // The groups are killed; before anything else runs, note whom the procedure fences.
    targets = this.#fenceTargets();
    this.#watches.clear();
    this.#intruders.clear();
    procedure
      .catch((err: unknown) => this.#ctx.log.error('emergency procedure failed', { error: String(err), stack: (err as Error).stack }))
      .finally(() => {
        // Daemons that said hello while the procedure ran belong to a fresh start: watch them.
        if (this.#emergencies === n) this.#state = this.#watches.size > 0 ? 'watching' : 'fenced';
        this.#ctx.log.warn(`emergency procedure finished: the guard is ${this.#state}`);
      });
    return true;
  }

  /**
   * The core daemons this server runs now: the watched ones (a daemon that said goodbye is leaving
   * on its own), second instances, and any other registered one, each with its connection if known.
   */
  #fenceTargets(): FenceTarget[] {
    const targets = new Map<number, FenceTarget>();
    const leaving = new Set<number>();
    for (const w of this.#watches.values()) {
      if (w.state === 'running') targets.set(w.pid, { pid: w.pid, daemon: w.daemon, peer: this.#channels.get(w.daemon)?.peer });
      else leaving.add(w.pid);
    }
    for (const [daemon, i] of this.#intruders) if (!targets.has(i.pid)) targets.set(i.pid, { pid: i.pid, daemon, peer: i.peer });
    for (const daemon of DAEMONS) {
      const reg = readRegistry(this.#registryFile(daemon));
      if (reg && !targets.has(reg.pid) && !leaving.has(reg.pid)) targets.set(reg.pid, { pid: reg.pid, daemon });
    }
    return [...targets.values()];
  }

  /** Tells the targets they are fenced, kills those still alive after the grace, removes their registrations. */
  async #fence(targets: FenceTarget[]): Promise<string> {
    const told: string[] = [];
    for (const { pid, daemon, peer } of targets) {
      const channel = this.#channels.get(daemon);
      if (!isAlive(pid) || !channel || !peer) continue;
      const frames = [peer, encodeGuardReply({ fenced: true })];
      channel.sending = channel.sending.then(() => channel.router.send(frames)).catch(() => undefined);
      told.push(PM2_NAMES[daemon]);
    }
    const until = Date.now() + FENCE_GRACE_MS;
    while (Date.now() < until && targets.some((target) => isAlive(target.pid))) await sleep(10);
    const killed: string[] = [];
    const kept: string[] = [];
    for (const { pid, daemon } of targets) {
      if (isAlive(pid)) {
        try {
          process.kill(pid, 'SIGKILL');
          killed.push(`${PM2_NAMES[daemon]} (pid ${pid})`);
        } catch (err) {
          killed.push(`${PM2_NAMES[daemon]} (pid ${pid}) could not be killed: ${(err as Error).message}`);
        }
      }
      try {
        const reg = readRegistry(this.#registryFile(daemon));
        if (reg?.pid === pid) rmSync(this.#registryFile(daemon), { force: true });
      } catch (err) {
        kept.push(`${PM2_NAMES[daemon]}: ${(err as Error).message}`);
      }
    }
    const outcome = `told to exit: ${told.join(', ') || 'none'}; killed: ${killed.join(', ') || 'none'}`;
    return kept.length ? `${outcome}; registrations not removed: ${kept.join(', ')}` : outcome;
  }
}

interface Registration {
  daemon: string;
  pid: number;
  startedMs: number;
}

/** A daemon's registry file, or undefined when absent or unreadable. */
export function readRegistry(file: string): Registration | undefined {
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as Partial<Registration>;
    if (typeof r.pid !== 'number' || !Number.isInteger(r.pid) || r.pid <= 1) return undefined;
    return { daemon: String(r.daemon), pid: r.pid, startedMs: Number(r.startedMs) || 0 };
  } catch {
    return undefined;
  }
}
