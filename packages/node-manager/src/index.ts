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
  groupTimeoutMs,
  type NmFinalAction,
  type NodeManagerOptions,
} from './node-manager.js';
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
