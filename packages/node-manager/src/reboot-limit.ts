/**
 * The reboot limit (DESIGN.md 6.6): how many shutdowns or reboots final actions may cause before
 * this server stays up with the cluster service stopped. The decision is a pure function of the
 * persisted history; the history lives in <state>/reboot-limit.json so it survives the reboots it counts.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { TandemError, formatDuration, writeFileAtomic } from '@tandem/core';

export interface RebootHistory {
  /** shutdowns and reboots done by final actions since the last reset */
  count: number;
  /** when the last one was done (ms since the epoch); 0 = never */
  lastMs: number;
}

export interface RebootLimit {
  /** 0 = never shut down or reboot */
  max: number;
  /** the count goes back to 0 when no shutdown or reboot happened for this long */
  resetAfterMs: number;
}

export interface RebootDecision {
  allowed: boolean;
  /** the history to persist (before the action runs, when allowed) */
  history: RebootHistory;
  reason: string;
}

export const NO_REBOOTS: RebootHistory = { count: 0, lastMs: 0 };

export function decideReboot(history: RebootHistory, nowMs: number, limit: RebootLimit): RebootDecision {
  // A clock that went backwards does not count as quiet time.
  const quietMs = Math.max(0, nowMs - history.lastMs);
  const count = history.count > 0 && quietMs >= limit.resetAfterMs ? 0 : history.count;
  const kept = count === history.count ? history : { count, lastMs: history.lastMs };
  if (limit.max <= 0) return { allowed: false, history: kept, reason: 'the reboot limit is 0: final actions never shut down or reboot' };
  if (count >= limit.max) {
    return {
      allowed: false,
      history: kept,
      reason: `reboot limit reached: ${count} of ${limit.max} within ${formatDuration(limit.resetAfterMs)}`,
    };
  }
  return { allowed: true, history: { count: count + 1, lastMs: nowMs }, reason: `shutdown or reboot ${count + 1} of ${limit.max}` };
}

export function rebootHistoryPath(stateDir: string): string {
  return join(stateDir, 'reboot-limit.json');
}

/** The persisted history; a missing file means no shutdown happened. A damaged one throws: the caller must not guess. */
export function loadRebootHistory(path: string): RebootHistory {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return NO_REBOOTS;
    throw new TandemError('INTERNAL', `cannot read the reboot history ${path}: ${(err as Error).message}`);
  }
  let raw: Partial<RebootHistory> | null = null;
  try {
    raw = JSON.parse(text) as Partial<RebootHistory> | null;
  } catch {
    // reported below
  }
  const count = Number(raw?.count);
  const lastMs = Number(raw?.lastMs);
  if (!Number.isInteger(count) || count < 0 || !Number.isFinite(lastMs) || lastMs < 0) {
    throw new TandemError('INTERNAL', `the reboot history ${path} is damaged (expected {"count": n, "lastMs": n})`);
  }
  return { count, lastMs };
}

/** Writes the history atomically (a crash mid-write leaves the old file). */
export function saveRebootHistory(path: string, history: RebootHistory): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileAtomic(path, JSON.stringify(history));
}
