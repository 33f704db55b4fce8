/**
 * @module @tandem/node-manager
 * The pure pieces of tandem-nm, for tests and tools. Importing this module starts nothing.
 */
export {
  acceptsOrdersFrom,
  GUARD_PING_INTERVAL_MS,
  GUARD_RETRY_MS,
  NM_FINAL_ACTIONS,
  NodeManager,
  STARTUP_PING_DEADLINE_MS,
  type NmFinalAction,
  type NodeManagerOptions,
} from './node-manager.js';
export { curvePublicKeyOf, loadCurveKeys, type CurveKeys } from './membership/keys.js';
export { Membership, nodeManagerEndpoints, type LocalMembership, type MembershipHost } from './membership/membership.js';
export {
  MembershipTable,
  checkMembership,
  type LostPeer,
  type PathView,
  type PeerReach,
  type PeerView,
  type ReportedMembership,
} from './membership/table.js';
export { ZAP_ENDPOINT } from './membership/zap.js';
export { z85Decode, z85Encode } from './membership/z85.js';
export { TAR_TIMEOUT_MS, collectLogs, defaultArchivePath, type CollectInput } from './logs-collect.js';
export {
  NO_REBOOTS,
  decideReboot,
  loadRebootHistory,
  rebootHistoryPath,
  saveRebootHistory,
  type RebootDecision,
  type RebootHistory,
  type RebootLimit,
} from './reboot-limit.js';
export { TRANSITIONS, canTransition, clusterTransition, type ClusterCommandName, type ServiceState } from './service-state.js';
export {
  PEER_DAEMONS,
  STATUS_TIMEOUT_MS,
  gatherStatus,
  mergeServers,
  placeRemoteGroups,
  type LocalView,
  type OnPartMissing,
  type PeerDaemon,
  type StatusClients,
} from './status.js';
export {
  ClusterViewTracker,
  declaredDownBy,
  sameView,
  type ClusterView,
  type HeardServer,
  type PlacedGroup,
  type ServerView,
  type StateChange,
  type ViewInput,
} from './cluster-view.js';
export {
  ARBITER_METHODS,
  DISK_SETTLE_MS,
  PARTITION_EFFECTS,
  acquireDiskLease,
  askWitness,
  decidePartition,
  defaultDiskLeaseTtlMs,
  holdOnLease,
  leaseUrl,
  methodVerdict,
  parseDiskLease,
  partitionMembers,
  pingAny,
  resolvePartition,
  splitLosers,
  witnessAnswer,
  type BridgeInput,
  type CommandRunner,
  type DiskLease,
  type DiskLeaseOptions,
  type DiskOutcome,
  type HeldLease,
  type HoldOnInput,
  type LeaseRequest,
  type MethodVerdict,
  type PartitionChecks,
  type PartitionDecision,
  type PartitionEffects,
  type PartitionInput,
  type PartitionMethod,
  type PingOutcome,
  type ResolveInput,
  type SplitLoser,
  type Verdict,
  type WitnessOutcome,
} from './partition/index.js';
export {
  configGenerationPath,
  diffConfigs,
  installConfig,
  nextGeneration,
  readGeneration,
  type ChangeLevel,
  type ConfigDiff,
} from './config-distribution.js';
export { lifePath, markLife, previousLife, type PreviousLife } from './return-state.js';
