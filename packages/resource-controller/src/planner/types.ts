/** The placement planner's input and output: plain data, so scenarios can be written as YAML. */
import type { StopFactor } from '../script-env.js';

/** What the planner needs of a group's configuration (a GroupConfig fits). */
export interface PlannerGroup {
  name: string;
  /** failover policy: servers in priority order */
  servers: string[];
  autoStart: boolean;
  autoFailback: boolean;
  exclusive: boolean;
}

export interface PlannerServer {
  name: string;
  /** only `online` servers can host groups */
  state: string;
}

/** Where a group is now. A group that is not `offline` holds its server. */
export interface GroupPlacement {
  group: string;
  state: string;
  server: string;
}

export type PlanEvent =
  | { kind: 'startup' }
  | { kind: 'start'; group: string; server?: string }
  | { kind: 'move'; group: string; server?: string }
  | { kind: 'failover'; group: string; from: string }
  | { kind: 'server-down'; server: string }
  | { kind: 'server-up'; server: string };

export type PlanAction =
  | { kind: 'start'; group: string; server: string; event: 'START' | 'FAILOVER' }
  | { kind: 'stop'; group: string; server: string; factor: StopFactor };

export interface PlanRefusal {
  group: string;
  reason: string;
  /** NO_SERVER: no server can host the group (as opposed to a refusal of the event itself) */
  code?: 'NO_SERVER';
}

export interface PlanInput {
  groups: PlannerGroup[];
  servers: PlannerServer[];
  placement: GroupPlacement[];
  event: PlanEvent;
}

/** Actions in the order they must run (a stop before the start it makes room for). */
export interface Plan {
  actions: PlanAction[];
  refusals: PlanRefusal[];
}
