/**
 * The alert log: significant events with stable ids, one JSON line each in <logs>/alerts.log.
 * Lines are appended with O_APPEND in one write, so several daemons (and the guard during an
 * emergency, when the node manager may be dead) can write it safely.
 */
import { appendFileSync, closeSync, fstatSync, mkdirSync, openSync, readSync } from 'node:fs';
import { dirname } from 'node:path';
import { rotateIfLarge } from './rotate.js';

/** The catalogue of alert ids. Never renumber: operators match on them. */
export const ALERTS = {
  'TND-NM-0001': { severity: 'info', what: 'cluster service started' },
  'TND-NM-0002': { severity: 'info', what: 'cluster service stopped' },
  'TND-NM-0003': { severity: 'info', what: 'cluster service suspended' },
  'TND-NM-0004': { severity: 'info', what: 'cluster service resumed' },
  'TND-NM-0010': { severity: 'error', what: 'final action' },
  'TND-NM-0011': { severity: 'warning', what: 'reboot limit reached: shutdown or reboot skipped' },
  'TND-NM-0012': { severity: 'warning', what: 'guard unreachable: the core daemons are not watched' },
  'TND-NM-0013': { severity: 'critical', what: 'emergency could not be handed to the guard' },
  'TND-NM-0020': { severity: 'error', what: 'server down' },
  'TND-NM-0021': { severity: 'critical', what: 'this server fences itself (declared down, or lost partition resolution)' },
  'TND-NM-0023': { severity: 'warning', what: 'server waits for tandem node return (it went down without a clean stop)' },
  'TND-NM-0024': { severity: 'error', what: 'a server declared down by one that hears both sides of a split that is not a clique' },
  'TND-NM-0025': {
    severity: 'warning',
    what: 'a lease renewal could not reach the arbiter: running on the lease still held, asking again',
  },
  'TND-NM-0030': { severity: 'warning', what: 'configuration applied (a new generation on every server)' },
  'TND-RC-0101': { severity: 'info', what: 'group started' },
  'TND-RC-0102': { severity: 'info', what: 'group stopped' },
  'TND-RC-0103': { severity: 'error', what: 'resource failed to start' },
  'TND-RC-0104': { severity: 'error', what: 'resource failed to stop' },
  'TND-RC-0105': { severity: 'warning', what: 'resource start retried' },
  'TND-RC-0106': { severity: 'error', what: 'group could not start' },
  'TND-RC-0107': { severity: 'warning', what: 'group failed over from a server that went down' },
  'TND-RC-0108': { severity: 'warning', what: 'a recovery run (TANDEM_EVENT=RECOVER) of a returning server failed' },
  'TND-RM-0201': { severity: 'error', what: 'monitor error' },
  'TND-RM-0202': { severity: 'info', what: 'monitor recovered' },
  'TND-RM-0203': { severity: 'warning', what: 'monitor delay warning' },
  'TND-RM-0204': { severity: 'warning', what: 'recovery: reactivation' },
  'TND-RM-0205': { severity: 'warning', what: 'recovery: failover skipped, no other server' },
  'TND-RM-0206': { severity: 'error', what: 'recovery: final action' },
  'TND-HB-0301': { severity: 'warning', what: 'interconnect path down' },
  'TND-HB-0302': { severity: 'info', what: 'interconnect path up' },
  'TND-GD-0901': { severity: 'critical', what: 'core daemon exited unexpectedly' },
  'TND-GD-0902': { severity: 'critical', what: 'core daemon stalled' },
  'TND-GD-0903': { severity: 'critical', what: 'emergency procedure' },
  'TND-GD-0904': { severity: 'critical', what: 'emergency action' },
  'TND-CORE-0950': { severity: 'critical', what: 'event loop stalled' },
  'TND-CORE-0951': { severity: 'critical', what: 'orderly stop failed: left for the guard' },
} as const;
export type AlertId = keyof typeof ALERTS;

export interface AlertRecord {
  id: AlertId;
  timeMs: number;
  severity: string;
  server: string;
  daemon: string;
  message: string;
  details: Record<string, string>;
}

export class AlertLog {
  readonly #path: string;
  readonly #server: string;
  readonly #daemon: string;
  /** alerts that could not be written */
  writeFailures = 0;

  constructor(path: string, server: string, daemon: string) {
    this.#path = path;
    this.#server = server;
    this.#daemon = daemon;
    mkdirSync(dirname(path), { recursive: true });
  }

  /**
   * Appends one alert synchronously: it is on disk when this returns. Never throws: an alert that
   * cannot be written (a full disk during an incident) must not take the daemon down with it;
   * the record is returned either way and `writeFailures` counts the losses.
   */
  raise(id: AlertId, message: string, details: Record<string, string> = {}): AlertRecord {
    const record: AlertRecord = {
      id,
      timeMs: Date.now(),
      severity: ALERTS[id].severity,
      server: this.#server,
      daemon: this.#daemon,
      message,
      details,
    };
    try {
      rotateIfLarge(this.#path);
      appendFileSync(this.#path, `${JSON.stringify(record)}\n`, { flag: 'a' });
    } catch {
      this.writeFailures++;
    }
    return record;
  }
}

/** How much of the end of the alert log `readAlerts` looks at: a bounded, fast read. */
const TAIL_BYTES = 2 * 1024 * 1024;

/** The newest `limit` alerts of an alert log (from its last 2 MB), oldest first; unreadable lines are skipped. */
export function readAlerts(path: string, limit = 100): AlertRecord[] {
  let text: string;
  try {
    const fd = openSync(path, 'r');
    try {
      const size = fstatSync(fd).size;
      const length = Math.min(size, TAIL_BYTES);
      const buffer = Buffer.alloc(length);
      readSync(fd, buffer, 0, length, size - length);
      text = buffer.toString('utf8');
      // A read that starts mid-file starts mid-line: drop that partial first line.
      if (length < size) text = text.slice(text.indexOf('\n') + 1);
    } finally {
      closeSync(fd);
    }
  } catch {
    return [];
  }
  const out: AlertRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      out.push(JSON.parse(line) as AlertRecord);
    } catch {
      // a line cut by a crash mid-write: skip it
    }
  }
  return out.slice(-limit);
}
