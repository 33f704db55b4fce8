/**
 * @module @tandem/guard
 * The pure pieces of the guard and its emergency procedure, for tests and tools.
 * Importing this module starts nothing.
 */
export { FENCE_GRACE_MS, Guard, readRegistry, type GuardState } from './guard.js';
export {
  EXEC_TIMEOUT_MS,
  awaitRelease,
  emergencyEnv,
  killLedgerGroups,
  planAction,
  removeLedgerAddresses,
  runEmergency,
  runEmergencyCommand,
  type ActionPlan,
  type AddressRelease,
  type EmergencyContext,
  type EmergencyOutcome,
  type GroupKill,
  type Release,
  type Trigger,
} from './emergency.js';
export { guardWasLate, judge, type DaemonWatch, type Observation, type Verdict, type WatchState } from './verdict.js';
