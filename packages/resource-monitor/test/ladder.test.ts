import t from 'tap';
import type { MonitorConfig } from '@tandem/core';
import { nextRecoveryStep, type LadderCounters, type LadderFacts, type RecoveryStep } from '@tandem/resource-monitor';

type Recovery = MonitorConfig['recovery'];

const group: Recovery = { target: 'web', kind: 'group', group: 'web', reactivations: 3, failovers: 1, finalAction: 'stop-group' };
const resource: Recovery = { ...group, target: 'app', kind: 'resource' };
const server: Recovery = {
  target: 'server',
  kind: 'server',
  group: '',
  reactivations: 3,
  failovers: 1,
  finalAction: 'stop-cluster-service-and-reboot',
};
const noRungs: Recovery = { ...group, reactivations: 0, failovers: 0 };

const fresh: LadderCounters = { reactivations: 0, failovers: 0, finalActionDone: false };
const up: LadderFacts = { targetActive: true, targetBusy: false };

const cases: [string, Recovery, LadderCounters, LadderFacts, RecoveryStep][] = [
  ['a group target is restarted first', group, fresh, up, 'reactivate'],
  ['a resource target is reactivated first', resource, fresh, up, 'reactivate'],
  ['the last reactivation is still a reactivation', group, { ...fresh, reactivations: 2 }, up, 'reactivate'],
  ['after the reactivations the group fails over', group, { ...fresh, reactivations: 3 }, up, 'failover'],
  ['after reactivations and failovers comes the final action', group, { ...fresh, reactivations: 3, failovers: 1 }, up, 'final'],
  ['a refused failover leads to the final action', group, { ...fresh, reactivations: 3 }, { ...up, failoverPossible: false }, 'final'],
  ['an unknown failover possibility is tried', group, { ...fresh, reactivations: 3 }, { ...up, failoverPossible: true }, 'failover'],
  ['with no reactivations and no failovers the final action comes at once', noRungs, fresh, up, 'final'],
  ['a server target takes the final action at once', server, fresh, up, 'final'],
  ['a server target acts even when the facts say inactive', server, fresh, { targetActive: false, targetBusy: false }, 'final'],
  ['a target not active here gets nothing', group, fresh, { targetActive: false, targetBusy: false }, 'none'],
  ['a target being started or stopped gets nothing', group, fresh, { targetActive: true, targetBusy: true }, 'none'],
  [
    'a busy target gets nothing even at the final rung',
    group,
    { ...fresh, reactivations: 3, failovers: 1 },
    { targetActive: true, targetBusy: true },
    'none',
  ],
  ['after the final action nothing more happens', group, { reactivations: 3, failovers: 1, finalActionDone: true }, up, 'none'],
  ['a server target takes its final action only once', server, { ...fresh, finalActionDone: true }, up, 'none'],
];

for (const [name, recovery, counters, facts, step] of cases) {
  t.test(name, async (t) => {
    const decision = nextRecoveryStep(recovery, counters, facts);
    t.equal(decision.step, step, decision.reason);
    t.ok(decision.reason.length > 0, 'the decision says why');
  });
}
