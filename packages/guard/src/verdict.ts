/**
 * The guard's decisions, as pure functions of what it tracks: is a core daemon's disappearance
 * a crash, has it stalled, and was the guard itself too late to judge stalls fairly.
 */
import { PM2_NAMES, beatIntervalMs, type AlertId, type CoreDaemon } from '@tandem/core';

/** `running`: hello (or re-adoption) seen; `stopped`: it said goodbye, its exit is planned. */
export type WatchState = 'running' | 'stopped';

export interface DaemonWatch {
  daemon: CoreDaemon;
  pid: number;
  lastBeatMs: number;
  stallLimitMs: number;
  state: WatchState;
}

export interface Observation {
  nowMs: number;
  /** the registered pid exists and is not a zombie */
  alive: boolean;
  /**
   * its registry file still exists. A daemon removes it after its goodbye, so a dead daemon
   * without one stopped as planned even if its goodbye frame was overtaken by the disconnect.
   */
  registered: boolean;
}

export type Verdict = { crashed: false } | { crashed: true; alert: Extract<AlertId, 'TND-GD-0901' | 'TND-GD-0902'>; reason: string };

const FINE: Verdict = { crashed: false };

/** Decides whether a watched daemon has crashed (exited without a goodbye) or stalled. */
export function judge(watch: DaemonWatch | undefined, seen: Observation): Verdict {
  if (!watch || watch.state === 'stopped') return FINE;
  const app = PM2_NAMES[watch.daemon];
  if (!seen.alive) {
    if (!seen.registered) return FINE;
    return { crashed: true, alert: 'TND-GD-0901', reason: `${app} exited unexpectedly (pid ${watch.pid})` };
  }
  // Late since its next beat was due: a healthy daemon is silent for up to a beat interval between
  // two beats, and counting that in would call a stall shorter than the limit one.
  const lateMs = seen.nowMs - watch.lastBeatMs - beatIntervalMs(watch.stallLimitMs);
  if (lateMs > watch.stallLimitMs) {
    return {
      crashed: true,
      alert: 'TND-GD-0902',
      reason: `${app} stalled for ${lateMs} ms (limit ${watch.stallLimitMs} ms, pid ${watch.pid})`,
    };
  }
  return FINE;
}

/**
 * True when the guard's own periodic check ran so late that the silence it sees may be its
 * own: beats queued while the guard was frozen have not been read yet. Stalls are then not
 * judged on this round (exits still are: a dead pid is dead however late we look).
 */
export function guardWasLate(previousCheckMs: number, nowMs: number, checkIntervalMs: number, toleranceMs: number): boolean {
  return nowMs - previousCheckMs > checkIntervalMs + toleranceMs;
}
