/**
 * @module @tandem/core
 * What every Tandem process shares: configuration, paths, logging, the alert log, the
 * activation ledger, ZeroMQ RPC and events, the daemon lifecycle, process and OS helpers.
 */
export { ALERTS, AlertLog, readAlerts, type AlertId, type AlertRecord } from './alerts.js';
export { CONFIG_SCHEMA, EMERGENCY_ACTIONS, MONITOR_FINAL_ACTIONS, START_FINAL_ACTIONS, STOP_FINAL_ACTIONS } from './config/schema.js';
export {
  GROUP_OPERATION_MARGIN_MS,
  findCycle,
  groupOperationTimeoutMs,
  partitionDecisionMs,
  configWarnings,
  fenceTiming,
  FENCE_MARGIN_MS,
  jsonPointerToPath,
  loadConfig,
  localServerName,
  validateConfigForServer,
  validateConfigText,
  type Validation,
} from './config/load.js';
export type {
  Config,
  EmergencyAction,
  ExecResourceConfig,
  FipResourceConfig,
  ResourceBase,
  GroupConfig,
  MonitorConfig,
  MonitorFinalAction,
  MonitorType,
  ResourceConfig,
  ResourceType,
  ServerConfig,
  StartFinalAction,
  StopFinalAction,
} from './config/types.js';
export {
  EXIT,
  beatIntervalMs,
  runDaemon,
  tickIntervalMs,
  type DaemonContext,
  type DaemonImpl,
  type DaemonOptions,
  type DaemonState,
} from './daemon.js';
export { formatDuration, parseDuration } from './duration.js';
export { writeFileAtomic } from './files.js';
export { mutualHeardMs } from './heard.js';
export { SerialQueue } from './serial.js';
export { ErrorCode, TandemError, errorFromWire, errorToWire, toTandemError } from './errors.js';
export { EventPublisher, EventSubscriber } from './events.js';
export { Ledger, readLedger, type FipEntry, type LedgerEntry, type ProcessGroupEntry } from './ledger.js';
export { createLogger, flushLogger, type Logger } from './logger.js';
export { findAddress, parseAddresses, removeAddress, runCommand, type CommandResult } from './network.js';
export { osActionSteps, osActionsDryRun, runOsAction, type OsAction, type OsStep } from './os-actions.js';
export { DAEMONS, PM2_NAMES, resolvePaths, type CoreDaemon, type DaemonName, type Paths } from './paths.js';
export { isAlive, isGroupAlive, liveGroups, rssKb, signalGroup, sleep, waitGroupGone } from './process.js';
export { LOG_MAX_BYTES, rotateIfLarge } from './rotate.js';
export { RpcClient, RpcServer, callOnce, type CallOptions, type RpcHandler } from './rpc.js';
