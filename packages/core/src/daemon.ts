/**
 * The life of a Tandem daemon process: configuration, logger, sockets, the liveness channel to
 * the guard, event-loop stall detection, and an orderly stop on SIGINT/SIGTERM that says
 * goodbye to the guard (a planned stop is not a crash). Each daemon's main.ts calls runDaemon.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as zmq from 'zeromq';
import { decodeGuardReply, encodeLiveness } from '@tandem/protocol';
import { AlertLog } from './alerts.js';
import { loadConfig, localServerName } from './config/load.js';
import type { Config } from './config/types.js';
import { toTandemError } from './errors.js';
import { EventPublisher } from './events.js';
import { writeFileAtomic } from './files.js';
import { Ledger } from './ledger.js';
import { createLogger, flushLogger, type Logger } from './logger.js';
import { rssKb } from './process.js';
import { resolvePaths, type CoreDaemon, type DaemonName, type Paths } from './paths.js';
import { RpcServer, type RpcHandler } from './rpc.js';

export type DaemonState = 'starting' | 'running' | 'stopping';

/** Exit codes: 0 planned stop, 70 crash-like (stall, fatal error), 78 configuration. */
export const EXIT = { OK: 0, FATAL: 70, CONFIG: 78 } as const;

export interface DaemonContext {
  name: DaemonName;
  server: string;
  config: Config;
  configPath: string;
  paths: Paths;
  log: Logger;
  alerts: AlertLog;
  events: EventPublisher;
  ledger: Ledger;
  startedMs: number;
}

export interface DaemonImpl {
  handle: RpcHandler;
  /** Orderly stop: release what this daemon owns. Bounded by the caller. */
  stop(reason: string): Promise<void>;
}

export interface DaemonOptions {
  name: DaemonName;
  /** a core daemon keeps a liveness connection to the guard */
  core: boolean;
  setup(ctx: DaemonContext): Promise<DaemonImpl>;
  /** how long the orderly stop may take before the process exits anyway (default 20 s) */
  stopTimeoutMs?: number | ((config: Config) => number);
  /**
   * What a stall of this process's event loop does instead of a crash-like exit (the guard: it
   * is the one that fences, so it fences rather than leave the server unwatched). The alert is
   * raised either way.
   */
  onStall?: (message: string) => void;
}

/**
 * How often a daemon checks its own timer lateness (and every second time beats to the guard): a
 * tenth of the stall limit, between 50 and 250 ms. Often enough to see a stall well within the
 * limit, rare enough that an idle server stays idle.
 */
export function tickIntervalMs(stallLimitMs: number): number {
  return Math.min(250, Math.max(50, Math.floor(stallLimitMs / 10)));
}

/** The guard needs a few beats per stall limit, not one per tick: a daemon beats every second tick. */
const TICKS_PER_BEAT = 2;

/** How often a daemon beats to the guard: a healthy one may be silent this long between two beats. */
export function beatIntervalMs(stallLimitMs: number): number {
  return TICKS_PER_BEAT * tickIntervalMs(stallLimitMs);
}

/** Guard liveness: hello, a beat every tick, goodbye on a planned stop. */
class GuardLink {
  // sendTimeout 0: when the guard is away and the queue is full, a send fails at once (and the
  // beat is dropped) instead of piling up behind the unreachable guard.
  readonly #dealer = new zmq.Dealer({ linger: 0, sendHighWaterMark: 100, sendTimeout: 0 });
  readonly #name: CoreDaemon;
  readonly #stallLimitMs: number;
  #tail: Promise<void> = Promise.resolve();

  constructor(endpoint: string, name: CoreDaemon, stallLimitMs: number, onFenced: () => void) {
    this.#name = name;
    this.#stallLimitMs = stallLimitMs;
    this.#dealer.connect(endpoint);
    void (async () => {
      try {
        for await (const [frame] of this.#dealer) {
          const d = decodeGuardReply(frame);
          if (d.ok && d.message.fenced) onFenced();
        }
      } catch {
        // closed
      }
    })();
  }

  #send(kind: Parameters<typeof encodeLiveness>[0]): void {
    const frame = encodeLiveness({
      daemon: this.#name,
      pid: process.pid,
      sentAtMs: Date.now(),
      stallLimitMs: this.#stallLimitMs,
      ...kind,
    });
    // Drop rather than queue when the guard is away: a beat is only worth its freshness.
    this.#tail = this.#tail.then(() => this.#dealer.send(frame)).catch(() => undefined);
  }

  hello(startedMs: number): void {
    this.#send({ hello: { startedMs } });
  }

  beat(maxLatenessMs: number): void {
    this.#send({ beat: { maxLatenessMs } });
  }

  async goodbye(reason: string): Promise<void> {
    this.#send({ goodbye: { reason } });
    this.#dealer.linger = 1000;
    await Promise.race([this.#tail, new Promise((r) => setTimeout(r, 1000))]);
    this.#dealer.close();
  }

  close(): void {
    this.#dealer.close();
  }
}

/** Removes the registry file only while it still names this process: a second instance may own it now. */
function removeOwnRegistration(file: string): void {
  try {
    if ((JSON.parse(readFileSync(file, 'utf8')) as { pid?: number }).pid === process.pid) rmSync(file, { force: true });
  } catch {
    // gone already, or unreadable: nothing of ours to remove
  }
}

export async function runDaemon(opts: DaemonOptions): Promise<void> {
  zmq.context.blocky = false;
  const startedMs = Date.now();
  const paths = resolvePaths();
  const server = localServerName();
  const log = createLogger({ daemon: opts.name, server, logsDir: paths.logs });
  let state: DaemonState = 'starting';

  let config: Config;
  try {
    config = loadConfig(paths.config, { server });
  } catch (err) {
    log.error(toTandemError(err).message);
    await flushLogger(log);
    process.exit(EXIT.CONFIG);
  }

  mkdirSync(paths.run, { recursive: true, mode: 0o700 });
  mkdirSync(paths.registry, { recursive: true, mode: 0o700 });
  const alerts = new AlertLog(paths.alerts, server, opts.name);
  const events = new EventPublisher(server, opts.name);
  const ledger = new Ledger(paths.ledger);
  const ctx: DaemonContext = { name: opts.name, server, config, configPath: paths.config, paths, log, alerts, events, ledger, startedMs };

  let guard: GuardLink | undefined;
  let rpc: RpcServer | undefined;
  let ticker: NodeJS.Timeout | undefined;
  const registryFile = join(paths.registry, `${opts.name}.json`);

  const fatal = async (message: string, err?: unknown): Promise<never> => {
    // Serve nothing more while the log is flushed: this process is going down as a crash.
    state = 'stopping';
    clearInterval(ticker);
    log.error(message, err ? { error: String(err), stack: (err as Error).stack } : {});
    await flushLogger(log, 300);
    process.exit(EXIT.FATAL);
  };
  process.on('uncaughtException', (err) => void fatal('uncaught exception', err));
  process.on('unhandledRejection', (err) => void fatal('unhandled rejection', err));

  let impl: DaemonImpl;
  try {
    await events.bind(paths.events(opts.name));
    impl = await opts.setup(ctx);
    rpc = new RpcServer(
      paths.rpc(opts.name),
      async (request) => {
        if (request.body === 'ping') {
          return { daemon: { name: opts.name, pid: process.pid, state, startedMs, rssKb: rssKb(process.pid) } };
        }
        if (state !== 'running') throw toTandemError(new Error(`${opts.name} is ${state}`), 'UNAVAILABLE');
        return impl.handle(request);
      },
      log,
    );
    await rpc.bind();
  } catch (err) {
    return fatal(`${opts.name} failed to start: ${toTandemError(err).message}`, err);
  }

  const stop = async (reason: string, code: number): Promise<void> => {
    if (state === 'stopping') return;
    state = 'stopping';
    log.info(`stopping: ${reason}`);
    clearInterval(ticker);
    const budgetMs = typeof opts.stopTimeoutMs === 'function' ? opts.stopTimeoutMs(config) : (opts.stopTimeoutMs ?? 20_000);
    let budget: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      budget = setTimeout(() => reject(new Error(`not done within ${budgetMs} ms`)), budgetMs);
    });
    try {
      await Promise.race([impl.stop(reason), timeout]);
      clearTimeout(budget);
    } catch (err) {
      // A stop that did not finish may have left something active: no goodbye, so the guard takes
      // this exit for a crash and releases what the ledger still holds.
      alerts.raise('TND-CORE-0951', `${opts.name} could not stop in order: ${toTandemError(err).message}`);
      return fatal(`orderly stop failed: ${toTandemError(err).message}`);
    }
    rpc?.close();
    events.close();
    if (guard) await guard.goodbye(reason);
    removeOwnRegistration(registryFile);
    log.info('stopped');
    await flushLogger(log, 500);
    process.exit(code);
  };

  if (opts.core) {
    guard = new GuardLink(paths.guardLive(opts.name as CoreDaemon), opts.name as CoreDaemon, config.cluster.stallLimitMs, () => {
      // The guard ran the emergency procedure: this server is fenced; leave without touching anything.
      log.error('fenced by the guard: exiting');
      void flushLogger(log, 200).then(() => process.exit(EXIT.OK));
    });
    guard.hello(startedMs);
    // Atomically: a guard restarting right now must never read half of it.
    writeFileAtomic(registryFile, JSON.stringify({ daemon: opts.name, pid: process.pid, startedMs }));
  }

  // Stall detection: a tick that comes late by more than the stall limit means this process
  // was frozen while the rest of the world went on; it must not carry on as if nothing happened.
  const tickMs = tickIntervalMs(config.cluster.stallLimitMs);
  let ticks = 0;
  let expected = Date.now() + tickMs;
  let maxLateness = 0;
  ticker = setInterval(() => {
    const now = Date.now();
    const lateness = Math.max(0, now - expected);
    expected = now + tickMs;
    maxLateness = Math.max(maxLateness, lateness);
    if (lateness > config.cluster.stallLimitMs) {
      alerts.raise('TND-CORE-0950', `${opts.name} event loop stalled for ${lateness} ms (limit ${config.cluster.stallLimitMs} ms)`);
      if (opts.onStall) opts.onStall(`event loop stalled for ${lateness} ms`);
      else void fatal(`event loop stalled for ${lateness} ms`);
      return;
    }
    if (++ticks % TICKS_PER_BEAT !== 0) return;
    guard?.beat(maxLateness);
    maxLateness = 0;
  }, tickMs);

  process.on('SIGINT', () => void stop('SIGINT', EXIT.OK));
  process.on('SIGTERM', () => void stop('SIGTERM', EXIT.OK));
  state = 'running';
  log.info(`${opts.name} running`, { pid: process.pid });
  process.send?.('ready');
}
