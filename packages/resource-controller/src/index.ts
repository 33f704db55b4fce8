/**
 * @module @tandem/resource-controller
 * The pure pieces of tandem-rc (the placement planner, the script environment, group states) and
 * the exec and fip drivers and the controller for tests. Importing this module does not start the daemon.
 */
export { plan } from './planner/index.js';
export {
  livePlacements,
  newlyOnline,
  orphans,
  plannerServers,
  provesItselfFree,
  settled,
  type Settling,
  type View,
  type ViewServer,
} from './coordinator.js';
export type { GroupPlacement, Plan, PlanAction, PlanEvent, PlanInput, PlannerGroup, PlannerServer, PlanRefusal } from './planner/index.js';
export {
  STOP_FACTORS,
  scriptEnv,
  startEventFor,
  startValues,
  type ScriptEvent,
  type ScriptRun,
  type ScriptTarget,
  type StartCause,
  type StartValues,
  type StopFactor,
} from './script-env.js';
export type { DriverStatus, ResourceDriver } from './drivers/driver.js';
export { ExecDriver, execStopBudgetMs, type ExecDriverOptions } from './drivers/exec.js';
export { FipDriver, fipStopBudgetMs, type FipDriverOptions } from './drivers/fip.js';
export { rcStopTimeoutMs, stopBudgetMs, STOP_MARGIN_MS } from './drivers/index.js';
export { killLeftovers, type LeftoverDeps } from './leftovers.js';
export { dependenciesOf, dependentsOf, startOrder } from './groups/dependencies.js';
export { groupState, type GroupOperation, type GroupState, type ResourceState } from './groups/states.js';
export { commandRefusal, serviceTransition, type ServiceState, type ServiceVerb } from './service-state.js';
export { ResourceController, type ControllerContext, type ControllerOptions, type FinalActionOrder } from './resource-controller.js';
