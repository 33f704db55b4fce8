/**
 * The disk check of partition resolution: a lease record in one file on storage every server
 * shares. Taking it is read, write, wait, read again (Fischer's mutual exclusion): the partition
 * of whoever wrote last within the settle time holds it. Never throws; bounded by the caller's timeout.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { sleep } from '@tandem/core';
import { isServerList, type DiskOutcome } from './decide.js';

/** The record in the lease file. `expiresAtMs` is wall-clock time: the servers' clocks must agree to well within the TTL. */
export interface DiskLease {
  cluster: string;
  /** the servers of the partition that holds it */
  holder: string[];
  /** the server that wrote it */
  server: string;
  expiresAtMs: number;
}

export interface DiskLeaseOptions {
  /** the lease file (cluster.networkPartition.disk) */
  path: string;
  cluster: string;
  server: string;
  /** this server's partition, itself included */
  members: string[];
  ttlMs: number;
  /** the wait between writing and reading again; a read-to-write longer than half of it gives up */
  settleMs?: number;
  /** bounds the whole attempt */
  timeoutMs: number;
  /** wall clock (ms since the epoch), for the lease's expiry */
  now?: () => number;
  /** monotonic clock (ms) for the time limits; default performance.now */
  monotonic?: () => number;
}

/**
 * The default settle time. Long enough for a write on shared storage to land before the other
 * side reads again, short enough to add little to a failover.
 */
export const DISK_SETTLE_MS = 1000;

/**
 * The default lease TTL: three heartbeat timeouts. Both sides notice the silence within about one
 * heartbeat timeout of each other, so the lease outlives the slower side's attempt; the survivor
 * renews it every TTL / 3 (one timeout) while a peer stays silent, which leaves a renewal to spare.
 */
export const defaultDiskLeaseTtlMs = (heartbeatTimeoutMs: number): number => 3 * heartbeatTimeoutMs;

/** The lease in a file's text, or why it is not one. */
export function parseDiskLease(text: string): DiskLease | { damaged: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { damaged: 'not JSON' };
  }
  const r = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>;
  if (
    typeof r['cluster'] !== 'string' ||
    !isServerList(r['holder']) ||
    typeof r['server'] !== 'string' ||
    typeof r['expiresAtMs'] !== 'number'
  )
    return { damaged: 'not a lease record (cluster, holder, server, expiresAtMs)' };
  return { cluster: r['cluster'], holder: r['holder'], server: r['server'], expiresAtMs: r['expiresAtMs'] };
}

type Read = { lease: DiskLease } | { none: string } | { failure: string };

async function readLease(path: string): Promise<Read> {
  try {
    const found = parseDiskLease(await readFile(path, 'utf8'));
    return 'damaged' in found ? { none: `the lease file is damaged (${found.damaged})` } : { lease: found };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { none: 'no lease file' };
    return { failure: `cannot read ${path}: ${(err as Error).message}` };
  }
}

/**
 * Writes the record through a temporary file in the same directory and a rename. The temporary
 * name is this writer's own: on shared storage another server may be writing beside it. Not
 * core's writeFileAtomic: this write is asynchronous, synced to the storage before the rename,
 * and one that is late by the time it would rename (`inTime` says no) is dropped: the record must
 * land within half the settle time of the read, or not at all.
 */
async function writeLease(path: string, lease: DiskLease, inTime: () => boolean): Promise<void> {
  const tmp = `${path}.${lease.server}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const file = await open(tmp, 'wx', 0o644);
    try {
      await file.writeFile(`${JSON.stringify(lease)}\n`);
      await file.sync();
    } finally {
      await file.close();
    }
    if (!inTime()) throw new Error('the write took more than half the settle time: dropped before the rename');
    await rename(tmp, path);
  } finally {
    await rm(tmp, { force: true });
  }
}

/** Resolves with `undefined` when `promise` did not settle within `ms`. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), Math.max(0, ms))));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const unavailable = (reason: string): DiskOutcome => ({ result: 'unavailable', reason });

/** Takes or renews the lease for `members`, or says who holds it. */
export async function acquireDiskLease(opts: DiskLeaseOptions): Promise<DiskOutcome> {
  const { path, cluster, server, members, ttlMs, timeoutMs } = opts;
  const settleMs = opts.settleMs ?? DISK_SETTLE_MS;
  const now = opts.now ?? Date.now;
  const clock = opts.monotonic ?? ((): number => performance.now());
  const deadline = clock() + timeoutMs;
  const left = (): number => deadline - clock();
  const late = `not done within ${timeoutMs} ms`;
  try {
    const readAt = clock();
    const before = await within(readLease(path), left());
    if (!before) return unavailable(`reading ${path}: ${late}`);
    if ('failure' in before) return unavailable(before.failure);
    if ('lease' in before) {
      const held = before.lease;
      if (held.cluster !== cluster) return unavailable(`${path} holds the lease of cluster ${held.cluster}, not ${cluster}`);
      const valid = held.expiresAtMs > now();
      if (valid && !held.holder.some((s) => members.includes(s)))
        return { result: 'held-by-other', holder: held.holder, server: held.server };
    }

    // Exclusion holds only if every writer's write lands within half the settle time of its read
    // (Fischer's bound, with a margin). Checked before writing where it can be: a record written and
    // then abandoned would make the other side lose too.
    const writeBudgetMs = (): number => readAt + settleMs / 2 - clock();
    if (left() < settleMs + writeBudgetMs())
      return unavailable(`no time left for the settle time of ${settleMs} ms within ${timeoutMs} ms`);
    if (writeBudgetMs() <= 0) return unavailable(`reading ${path} took more than half the settle time (${settleMs} ms)`);
    const mine: DiskLease = { cluster, holder: [...members], server, expiresAtMs: now() + ttlMs };
    const written = await within(
      writeLease(path, mine, () => writeBudgetMs() > 0).then(
        () => '',
        (err: Error) => `cannot write ${path}: ${err.message}`,
      ),
      writeBudgetMs(),
    );
    if (written === undefined) return unavailable(`writing ${path} took more than half the settle time (${settleMs} ms)`);
    if (written) return unavailable(written);

    await sleep(settleMs);
    const after = await within(readLease(path), left());
    if (!after) return unavailable(`reading ${path} again: ${late}`);
    if ('failure' in after) return unavailable(after.failure);
    if ('none' in after) return unavailable(`the lease record went away while settling (${after.none})`);
    const last = after.lease;
    // The last writer may be another server of this partition taking the same lease at the same time.
    if (last.cluster === cluster && last.holder.includes(server) && last.expiresAtMs > now())
      return { result: 'held', holder: last.holder, expiresAtMs: last.expiresAtMs };
    return { result: 'held-by-other', holder: last.holder, server: last.server };
  } catch (err) {
    return unavailable(`${path}: ${(err as Error).message}`);
  }
}
