/**
 * @module @tandem/node-manager
 * The pure pieces of tandem-nm, for tests and tools. Importing this module starts nothing.
 */
export {
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
  type LocalView,
  type OnPartMissing,
  type PeerDaemon,
  type StatusClients,
} from './status.js';
