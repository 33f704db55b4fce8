/**
 * The recovery ladder (DESIGN.md 6.4) as a pure function: given a monitor's recovery settings,
 * its counters and what rc says about the recovery target, which step comes next. The daemon
 * does the step, updates the counters and asks again on the next error.
 */
import type { MonitorConfig } from '@tandem/core';

export type RecoveryStep = 'none' | 'reactivate' | 'failover' | 'final';

export interface LadderCounters {
  reactivations: number;
  failovers: number;
  finalActionDone: boolean;
}

export interface LadderFacts {
  /** the recovery target is online on this server (always true for `server`) */
  targetActive: boolean;
  /** rc is starting or stopping the target: no action meanwhile */
  targetBusy: boolean;
  /** false once rc refused a failover in this episode (no other server can host the group) */
  failoverPossible?: boolean;
}

export interface LadderDecision {
  step: RecoveryStep;
  /** why, in one line for the log */
  reason: string;
}

export function nextRecoveryStep(recovery: MonitorConfig['recovery'], counters: LadderCounters, facts: LadderFacts): LadderDecision {
  if (counters.finalActionDone) return { step: 'none', reason: 'the final action was already taken' };
  if (recovery.kind === 'server') return { step: 'final', reason: 'the recovery target is the server' };
  if (!facts.targetActive) return { step: 'none', reason: `recovery target ${recovery.target} is not active on this server` };
  if (facts.targetBusy) return { step: 'none', reason: `recovery target ${recovery.target} is being started or stopped` };
  if (counters.reactivations < recovery.reactivations) {
    return { step: 'reactivate', reason: `reactivation ${counters.reactivations + 1} of ${recovery.reactivations}` };
  }
  if (counters.failovers < recovery.failovers && facts.failoverPossible !== false) {
    return { step: 'failover', reason: `failover ${counters.failovers + 1} of ${recovery.failovers}` };
  }
  const why = counters.failovers < recovery.failovers ? 'no other server can take the group' : 'reactivations and failovers are used up';
  return { step: 'final', reason: `final action ${recovery.finalAction}: ${why}` };
}
