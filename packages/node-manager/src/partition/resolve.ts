/**
 * Partition resolution with its effects: runs the checks the configured methods need, in an
 * order that never takes an exclusive lease a partition would then lose by another method, and
 * hands their outcomes to the pure decision. Never throws; bounded by one timeout.
 */
import { performance } from 'node:perf_hooks';
import type { Config } from '@tandem/core';
import { acquireDiskLease, type DiskLeaseOptions } from './disk-lease.js';
import {
  ARBITER_METHODS,
  decidePartition,
  methodVerdict,
  type HeldLease,
  partitionMembers,
  type DiskOutcome,
  type PartitionChecks,
  type PartitionDecision,
  type PingOutcome,
  type WitnessOutcome,
} from './decide.js';
import { pingAny } from './ping.js';
import { askWitness, type LeaseRequest } from './witness-client.js';

/** The effects, replaceable in tests. */
export interface PartitionEffects {
  askWitness: (witness: string, request: LeaseRequest, timeoutMs: number) => Promise<WitnessOutcome>;
  pingAny: (targets: readonly string[] | undefined, timeoutMs: number) => Promise<PingOutcome>;
  acquireDiskLease: (opts: DiskLeaseOptions) => Promise<DiskOutcome>;
}

export const PARTITION_EFFECTS: PartitionEffects = {
  askWitness,
  pingAny: (targets, timeoutMs) => pingAny(targets, timeoutMs),
  acquireDiskLease,
};

export interface ResolveInput {
  cluster: string;
  networkPartition: Config['cluster']['networkPartition'];
  /** every server, in configuration order */
  servers: readonly string[];
  self: string;
  /** the servers this server can still hear */
  heard: Iterable<string>;
  /** bounds every check together */
  timeoutMs: number;
  /** the disk lease's TTL (defaultDiskLeaseTtlMs of the heartbeat timeout) and settle time */
  disk: { ttlMs: number; settleMs?: number };
}

/**
 * Decides whether this server's partition survives. Majority needs no check; ping runs next (a
 * server cut off from its own network must not take a lease); the arbiters (witness, disk) are
 * asked last, in configuration order, and only while every method so far says survive or tie:
 * a partition that takes a lease and then loses would leave no survivor at all.
 */
export async function resolvePartition(
  input: ResolveInput,
  effects: PartitionEffects = PARTITION_EFFECTS,
): Promise<PartitionDecision & { lease?: HeldLease | undefined }> {
  const { cluster, networkPartition: np, servers, self } = input;
  const members = partitionMembers(servers, self, input.heard);
  const deadline = performance.now() + input.timeoutMs;
  const left = (): number => Math.max(0, deadline - performance.now());
  const checks: PartitionChecks = {};
  let witnessAskedMs = 0;
  const stillStanding = (): boolean =>
    np.methods
      .filter((m) => m === 'majority' || checks[m] !== undefined)
      .every((m) => methodVerdict(m, servers, members, checks).verdict !== 'lose');

  if (servers.includes(self) && stillStanding() && np.methods.includes('ping')) checks.ping = await effects.pingAny(np.pingTargets, left());
  for (const method of np.methods.filter((m) => ARBITER_METHODS.includes(m))) {
    if (!servers.includes(self) || !stillStanding()) break;
    if (method === 'witness') {
      witnessAskedMs = performance.now();
      checks.witness = np.witness
        ? await effects.askWitness(np.witness, { cluster, server: self, members }, left())
        : { result: 'unavailable', reason: 'no witness URL is configured' };
    } else {
      checks.disk = np.disk
        ? await effects.acquireDiskLease({ path: np.disk, cluster, server: self, members, ...input.disk, timeoutMs: left() })
        : { result: 'unavailable', reason: 'no disk lease path is configured' };
    }
  }
  const decision = decidePartition({ methods: np.methods, servers, self, heard: members, checks });
  return { ...decision, lease: heldLease(checks, witnessAskedMs) };
}

/**
 * The lease the arbiters granted (undefined when none did): until when, on the performance.now()
 * clock, the shortest when both were asked; and every server it was granted to. The witness's
 * lease is counted from when it was asked, so it never outlasts the witness's own. The survivor
 * renews it before then while a server stays silent.
 */
function heldLease(checks: PartitionChecks, witnessAskedMs: number): HeldLease | undefined {
  const until: number[] = [];
  const holder = new Set<string>();
  if (checks.witness?.result === 'granted') {
    until.push(witnessAskedMs + checks.witness.expiresMs);
    for (const s of checks.witness.holder) holder.add(s);
  }
  if (checks.disk?.result === 'held') {
    until.push(performance.now() + checks.disk.expiresAtMs - Date.now());
    for (const s of checks.disk.holder) holder.add(s);
  }
  return until.length > 0 ? { untilMs: Math.min(...until), holder: [...holder] } : undefined;
}
