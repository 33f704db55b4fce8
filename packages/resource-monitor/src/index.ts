/**
 * @module @tandem/resource-monitor
 * The pure pieces of tandem-rm and its monitors, for tests and tools. Importing this module
 * does not start the daemon (main.ts does).
 */
export { nextRecoveryStep, type LadderCounters, type LadderDecision, type LadderFacts, type RecoveryStep } from './ladder.js';
export { localResource, recoveryFacts, watchedActive, type GroupFacts } from './targets.js';
export { MONITOR_TYPES, createMonitor } from './monitors/index.js';
export type { CheckResult, Monitor, MonitorEnv, MonitorFactory, ResourceFacts } from './monitors/monitor.js';
export { pidMonitor } from './monitors/pid.js';
export { findProcesses, processMonitor } from './monitors/process.js';
export { customMonitor, runCheckCommand } from './monitors/custom.js';
export { httpMonitor } from './monitors/http.js';
export { tcpMonitor } from './monitors/tcp.js';
export { fipMonitor } from './monitors/fip.js';
export { checkLink, nicMonitor, parseLink } from './monitors/nic.js';
export { ipMonitor } from './monitors/ip.js';
export type { FinalActionOrder, NmApi, RcApi } from './clients.js';
export {
  ResourceMonitor,
  realTimers,
  type AlertSink,
  type EventSink,
  type Log,
  type MonitorState,
  type ResourceMonitorDeps,
  type ServiceState,
  type Timers,
} from './resource-monitor.js';
