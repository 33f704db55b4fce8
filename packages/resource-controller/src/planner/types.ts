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

/**
 * A server as the planner sees it. Only `online` servers can host groups. `unknown` (not heard
 * from yet) also keeps groups from starting below it during the startup wait. `lost-partition`:
 * this server lost partition resolution and is fencing itself, so the plan only stops its groups.
 * Any other state (`offline`, `starting`, `leaving`, `isolated`, `suspended`) just cannot host.
 */
export interface PlannerServer {
  name: string;
  state: string;
}

/** Where a group is now. A group that is not `offline` holds its server. */
export interface GroupPlacement {
  group: string;
  /**
   * offline, starting, online, stopping, failed, partial, or `moving`: the stop of a move is
   * still running on `server`, and the group is to start on `destination` (which it holds too).
   */
  state: string;
  server: string;
  /** while `moving`: where the move takes it */
  destination?: string;
  /** where the group ran at the last cluster shutdown (or when the cluster went down): startup compares with it */
  lastServer?: string;
  /** failovers in a row; the caller resets it on operator reset, a new start, or a healthy run. Default 0. */
  failovers?: number;
}

export type PlanEvent =
  /**
   * startupWaitOver: the startup wait has passed, so servers still `unknown` count as offline
   * (default false). groups: only these are placed (startup orders refused and placed again); the
   * others are left as they are. Default: every group.
   */
  | { kind: 'startup'; startupWaitOver?: boolean; groups?: string[] }
  | { kind: 'start'; group: string; server?: string }
  | { kind: 'stop'; group: string }
  | { kind: 'move'; group: string; server?: string }
  /** limit: the failovers in a row the asking rung allows (resource onStartFailure or monitor recovery); default no limit */
  | { kind: 'failover'; group: string; from: string; limit?: number }
  /** fenceGraceOver: the dead server has had its fence grace to release everything (default true) */
  | { kind: 'server-down'; server: string; fenceGraceOver?: boolean }
  | { kind: 'server-up'; server: string }
  /** an orderly `node down`: the server (now `leaving`) stops its groups, which then fail over */
  | { kind: 'server-shutdown'; server: string }
  | { kind: 'cluster-shutdown' };

/**
 * A start that follows a stop of the same group (a move, a failover, a group whose move stop is
 * still running) must wait for that stop to finish.
 */
export type PlanAction =
  | { kind: 'start'; group: string; server: string; event: 'START' | 'FAILOVER' }
  | { kind: 'stop'; group: string; server: string; factor: StopFactor };

export interface PlanRefusal {
  group: string;
  reason: string;
  /**
   * NO_SERVER: no server can host the group (as opposed to a refusal of the event itself);
   * FAILOVER_LIMIT: the group has failed over as many times in a row as the failover allows.
   */
  code?: 'NO_SERVER' | 'FAILOVER_LIMIT';
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
