/**
 * Network-partition resolution (DESIGN.md 6.2, docs/partition.md): the pure decision, the checks
 * it needs (witness, ping, disk lease) and resolvePartition, which runs them in a safe order.
 */
export {
  ARBITER_METHODS,
  decidePartition,
  holdOnLease,
  methodVerdict,
  partitionMembers,
  type DiskOutcome,
  type HeldLease,
  type HoldOnInput,
  type MethodVerdict,
  type PartitionChecks,
  type PartitionDecision,
  type PartitionInput,
  type PartitionMethod,
  type PingOutcome,
  type Verdict,
  type WitnessOutcome,
} from './decide.js';
export { splitLosers, type BridgeInput, type SplitLoser } from './bridge.js';
export {
  DISK_SETTLE_MS,
  acquireDiskLease,
  defaultDiskLeaseTtlMs,
  parseDiskLease,
  type DiskLease,
  type DiskLeaseOptions,
} from './disk-lease.js';
export { pingAny, type CommandRunner } from './ping.js';
export { PARTITION_EFFECTS, resolvePartition, type PartitionEffects, type ResolveInput } from './resolve.js';
export { askWitness, leaseUrl, witnessAnswer, type LeaseRequest } from './witness-client.js';
