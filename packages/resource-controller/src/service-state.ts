/**
 * The cluster service as the resource controller sees it: `stopped` (initial) | `active` |
 * `suspended`. Every allowed transition, and which group commands each state accepts, is here.
 */

export type ServiceState = 'stopped' | 'active' | 'suspended';
export type ServiceVerb = 'ACTIVATE' | 'SUSPEND' | 'DEACTIVATE' | 'RECOVER';
/** What the controller does with its groups on a transition. */
export type ServiceEffect = 'start-auto-groups' | 'stop-all-groups' | 'recover-returned' | 'none';

const ONLY_BEFORE_START = 'a server recovers its groups only before its cluster service starts (returning to the cluster)';

export type ServiceTransition = { to: ServiceState; effect: ServiceEffect } | { refused: string };

const TRANSITIONS: Record<ServiceState, Record<ServiceVerb, ServiceTransition>> = {
  stopped: {
    ACTIVATE: { to: 'active', effect: 'start-auto-groups' },
    SUSPEND: { refused: 'cluster service is stopped: nothing to suspend' },
    DEACTIVATE: { to: 'stopped', effect: 'stop-all-groups' },
    RECOVER: { to: 'stopped', effect: 'recover-returned' },
  },
  active: {
    ACTIVATE: { to: 'active', effect: 'none' },
    SUSPEND: { to: 'suspended', effect: 'none' },
    DEACTIVATE: { to: 'stopped', effect: 'stop-all-groups' },
    RECOVER: { refused: ONLY_BEFORE_START },
  },
  suspended: {
    // resume: the groups kept running, nothing starts
    ACTIVATE: { to: 'active', effect: 'none' },
    SUSPEND: { to: 'suspended', effect: 'none' },
    DEACTIVATE: { to: 'stopped', effect: 'stop-all-groups' },
    RECOVER: { refused: ONLY_BEFORE_START },
  },
};

export function serviceTransition(from: ServiceState, verb: ServiceVerb): ServiceTransition {
  return TRANSITIONS[from][verb];
}

/**
 * Why a group or resource command is refused in this state, or undefined when it may run.
 * Suspended refuses every command (the monitor's too); stopped refuses what would start something.
 */
export function commandRefusal(state: ServiceState, startsSomething: boolean): string | undefined {
  if (state === 'suspended') return 'cluster is suspended';
  if (state === 'stopped' && startsSomething) return 'cluster service is stopped (start it with `tandem cluster start`)';
  return undefined;
}
