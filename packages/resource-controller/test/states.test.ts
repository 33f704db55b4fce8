import t from 'tap';
import {
  commandRefusal,
  dependenciesOf,
  dependentsOf,
  groupState,
  serviceTransition,
  startOrder,
  type ResourceState,
} from '@tandem/resource-controller';

t.test('a group state is derived from its resources', async (t) => {
  const cases: [ResourceState[], ReturnType<typeof groupState>][] = [
    [['offline', 'offline'], 'offline'],
    [['online', 'online'], 'online'],
    [['online', 'offline'], 'partial'],
    [['online', 'start-failed'], 'partial'],
    [['offline', 'start-failed'], 'failed'],
    [['online', 'stop-failed'], 'failed'],
    [['offline', 'stop-failed'], 'failed'],
  ];
  for (const [resources, want] of cases) t.equal(groupState(resources, undefined, true), want, `${resources.join(',')} → ${want}`);
});

t.test('a group under an operation shows the operation', async (t) => {
  t.equal(groupState(['online', 'offline'], 'starting', true), 'starting');
  t.equal(groupState(['online', 'offline'], 'stopping', true), 'stopping');
});

t.test('a group without resources is online once started', async (t) => {
  t.equal(groupState([], undefined, false), 'offline');
  t.equal(groupState([], undefined, true), 'online');
});

const resources = [
  { name: 'app', dependsOn: ['vip', 'data'] },
  { name: 'vip', dependsOn: [] },
  { name: 'data', dependsOn: ['disk'] },
  { name: 'disk', dependsOn: [] },
  { name: 'report', dependsOn: ['app'] },
];

t.test('resources start after what they depend on, otherwise in configuration order', async (t) => {
  t.same(startOrder(resources), ['vip', 'disk', 'data', 'app', 'report']);
});

t.test('dependents and dependencies are transitive', async (t) => {
  t.same([...dependentsOf(resources, 'disk')].sort(), ['app', 'data', 'report']);
  t.same([...dependentsOf(resources, 'report')], []);
  t.same([...dependenciesOf(resources, 'app')].sort(), ['data', 'disk', 'vip']);
});

t.test('the service state machine allows exactly the documented transitions', async (t) => {
  t.same(serviceTransition('stopped', 'ACTIVATE'), { to: 'active', effect: 'start-auto-groups' });
  t.same(serviceTransition('suspended', 'ACTIVATE'), { to: 'active', effect: 'none' });
  t.same(serviceTransition('active', 'SUSPEND'), { to: 'suspended', effect: 'none' });
  t.same(serviceTransition('active', 'DEACTIVATE'), { to: 'stopped', effect: 'stop-all-groups' });
  t.same(serviceTransition('suspended', 'DEACTIVATE'), { to: 'stopped', effect: 'stop-all-groups' });
  t.ok('refused' in serviceTransition('stopped', 'SUSPEND'));
});

t.test('a suspended service refuses every command, a stopped one only what starts something', async (t) => {
  t.equal(commandRefusal('suspended', false), 'cluster is suspended');
  t.equal(commandRefusal('suspended', true), 'cluster is suspended');
  t.match(commandRefusal('stopped', true) ?? '', /stopped/);
  t.equal(commandRefusal('stopped', false), undefined);
  t.equal(commandRefusal('active', true), undefined);
});
