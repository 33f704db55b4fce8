/**
 * The cluster service on this server as a state machine: every allowed transition is listed in
 * TRANSITIONS, and `clusterTransition` turns an operator command into the next state or a
 * CONFLICT that says why the command makes no sense now.
 */
import { TandemError } from '@tandem/core';

export type ServiceState = 'starting' | 'online' | 'suspended' | 'stopped';
export type ClusterCommandName = 'start' | 'stop' | 'suspend' | 'resume';

/** starting → online (startup done) or stopped (startup failed: the operator starts it); online ⇄ suspended; both → stopped → online. */
export const TRANSITIONS: Readonly<Record<ServiceState, readonly ServiceState[]>> = {
  starting: ['online', 'stopped'],
  online: ['suspended', 'stopped'],
  suspended: ['online', 'stopped'],
  stopped: ['online'],
};

export function canTransition(from: ServiceState, to: ServiceState): boolean {
  return TRANSITIONS[from].includes(to);
}

const TARGET: Record<ClusterCommandName, ServiceState> = { start: 'online', stop: 'stopped', suspend: 'suspended', resume: 'online' };

/** Why a command is impossible in a state; the pairs that are possible have no entry. */
const REFUSAL: Partial<Record<ServiceState, Partial<Record<ClusterCommandName, string>>>> = {
  starting: {
    start: 'cluster service is still starting',
    stop: 'cluster service is still starting',
    suspend: 'cluster service is still starting',
    resume: 'cluster service is still starting',
  },
  online: { start: 'cluster is already started', resume: 'cluster is not suspended' },
  suspended: { start: 'cluster is suspended: use cluster resume', suspend: 'cluster is already suspended' },
  stopped: {
    stop: 'cluster is already stopped',
    suspend: 'cluster is stopped: use cluster start',
    resume: 'cluster is stopped: use cluster start',
  },
};

/** The state a cluster command leads to from `state`; throws CONFLICT when the command is impossible there. */
export function clusterTransition(state: ServiceState, command: ClusterCommandName): ServiceState {
  const refusal = REFUSAL[state]?.[command];
  const next = TARGET[command];
  if (refusal !== undefined || !canTransition(state, next)) {
    throw new TandemError('CONFLICT', refusal ?? `cluster cannot ${command} while ${state}`);
  }
  return next;
}
