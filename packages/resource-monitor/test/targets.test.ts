import t from 'tap';
import type { MonitorConfig } from '@tandem/core';
import { recoveryFacts, watchedActive, type GroupFacts } from '@tandem/resource-monitor';

const monitor = (over: Partial<MonitorConfig>): MonitorConfig => ({
  name: 'm',
  type: 'custom',
  intervalMs: 1000,
  timeoutMs: 1000,
  retries: 0,
  startDelayMs: 0,
  when: 'active',
  delayWarningPercent: 80,
  recovery: { target: 'web', kind: 'group', group: 'web', reactivations: 1, failovers: 0, finalAction: 'none' },
  ...over,
});

const web = (state: string, server: string, appState: string): GroupFacts[] => [
  { name: 'web', state, server, resources: [{ name: 'app', state: appState, pid: 42, alive: true }] },
];

const activeCases: [string, Partial<MonitorConfig>, GroupFacts[], boolean][] = [
  ['a target resource online here is active', { target: 'app' }, web('online', 'node1', 'online'), true],
  ['a target resource online on another server is not', { target: 'app' }, web('online', 'node2', 'online'), false],
  ['a target resource being started is not active', { target: 'app' }, web('starting', 'node1', 'starting'), false],
  ['without a target resource the recovery group counts', {}, web('online', 'node1', 'online'), true],
  ['a partial recovery group counts as active', {}, web('partial', 'node1', 'start-failed'), true],
  ['an offline recovery group is not active', {}, web('offline', '', 'offline'), false],
  [
    'a monitor recovering the server is always active',
    { recovery: { target: 'server', kind: 'server', group: '', reactivations: 0, failovers: 0, finalAction: 'none' } },
    [],
    true,
  ],
];
for (const [name, over, groups, expected] of activeCases) {
  t.test(name, async (t) => t.equal(watchedActive(monitor(over), groups, 'node1'), expected));
}

const resourceRecovery: MonitorConfig['recovery'] = {
  target: 'app',
  kind: 'resource',
  group: 'web',
  reactivations: 1,
  failovers: 0,
  finalAction: 'none',
};
const factCases: [string, MonitorConfig['recovery'], GroupFacts[], { targetActive: boolean; targetBusy: boolean }][] = [
  [
    'a group online here is active and idle',
    monitor({}).recovery,
    web('online', 'node1', 'online'),
    { targetActive: true, targetBusy: false },
  ],
  [
    'a group elsewhere is not active here',
    monitor({}).recovery,
    web('online', 'node2', 'online'),
    { targetActive: false, targetBusy: false },
  ],
  [
    'a group with a resource stopping is busy',
    monitor({}).recovery,
    web('online', 'node1', 'stopping'),
    { targetActive: true, targetBusy: true },
  ],
  ['a resource online here is active', resourceRecovery, web('online', 'node1', 'online'), { targetActive: true, targetBusy: false }],
  [
    'a resource being started is busy and not active',
    resourceRecovery,
    web('partial', 'node1', 'starting'),
    { targetActive: false, targetBusy: true },
  ],
  [
    'a resource of a group that is stopping is busy',
    resourceRecovery,
    web('stopping', 'node1', 'online'),
    { targetActive: true, targetBusy: true },
  ],
];
for (const [name, recovery, groups, expected] of factCases) {
  t.test(name, async (t) => t.same(recoveryFacts(recovery, groups, 'node1'), expected));
}
