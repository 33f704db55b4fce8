export { plan } from './plan.js';
export type { GroupPlacement, Plan, PlanAction, PlanEvent, PlanInput, PlannerGroup, PlannerServer, PlanRefusal } from './types.js';
