import t from 'tap';
import { configWarnings, fenceTiming, findCycle, jsonPointerToPath, validateConfigText } from '@tandem/core';

const base = `
cluster: { name: demo, emergency: { action: exec, command: "true" } }
servers: [ { name: node1 } ]
groups:
  - name: web
    resources:
      - { name: app, type: exec, start: "sleep 100", mode: async }
monitors:
  - { name: app-alive, type: pid, target: app }
`;

t.test('a valid configuration is normalised with defaults and milliseconds', async (t) => {
  const v = validateConfigText(base);
  if (!v.ok) throw new Error(v.problems.join('\n'));
  t.equal(v.config.cluster.heartbeat.intervalMs, 1000);
  t.equal(v.config.cluster.stallLimitMs, 2500);
  t.same(v.config.groups[0]?.servers, ['node1']);
  t.equal(v.config.groups[0]?.resources[0]?.timeoutMs, 60_000);
  t.equal(v.config.monitors[0]?.recovery.target, 'web');
  t.equal(v.config.monitors[0]?.when, 'active');
});

t.test('json pointers become readable paths', async (t) => {
  t.equal(jsonPointerToPath('/groups/1/resources/0/address'), 'groups[1].resources[0].address');
});

t.test('a dependency cycle is found', async (t) => {
  t.same(
    findCycle(
      new Map([
        ['a', ['b']],
        ['b', ['a']],
      ]),
    ),
    ['a', 'b', 'a'],
  );
  t.equal(
    findCycle(
      new Map([
        ['a', ['b']],
        ['b', []],
      ]),
    ),
    undefined,
  );
});

const cases: [string, string, RegExp][] = [
  ['a wrong type', base.replace('start: "sleep 100"', 'start: 5'), /groups\[0\]\.resources\[0\]\.start: must be string/],
  ['an unknown key', base.replace('mode: async', 'mode: async, colour: red'), /groups\[0\]\.resources\[0\]: unknown key "colour"/],
  [
    'a bad duration',
    base.replace('start: "sleep 100"', 'start: x, timeout: soon'),
    /groups\[0\]\.resources\[0\]\.timeout: must be a duration/,
  ],
  [
    'a duplicate group',
    base.replace('monitors:', '  - name: web\n    resources: []\nmonitors:'),
    /groups\[1\]\.name: duplicate group name "web"/,
  ],
  [
    'a dependency cycle',
    base.replace('mode: async }', 'mode: async, dependsOn: [b] }\n      - { name: b, type: exec, start: x, dependsOn: [app] }'),
    /groups\[0\]\.resources: dependency cycle app -> b -> app/,
  ],
  [
    'an unknown resource type',
    base.replace('type: exec, start', 'type: teleport, start'),
    /groups\[0\]\.resources\[0\]\.type: unknown type/,
  ],
  ['a monitor target that does not exist', base.replace('target: app', 'target: nope'), /monitors\[0\]\.target: no resource named "nope"/],
  ['exec emergency without a command', base.replace(', command: "true"', ''), /cluster\.emergency\.command: required/],
  ['YAML that does not parse', 'cluster: [', /YAML/],
  [
    'a duration a timer cannot hold',
    base.replace('start: "sleep 100"', 'start: x, timeout: 900h'),
    /groups\[0\]\.resources\[0\]\.timeout: 900h is longer than the longest timer/,
  ],
  [
    'a monitor interval that would spin',
    base.replace('target: app }', 'target: app, interval: 1ms }'),
    /monitors\[0\]\.interval: 1ms is shorter than the minimum 100ms/,
  ],
  [
    'a stall limit that would fence the server at once',
    base.replace('cluster: { name: demo,', 'cluster: { name: demo, stallLimit: 20ms,'),
    /cluster\.stallLimit: 20ms is shorter than the minimum/,
  ],
  [
    'the same floating IP twice',
    base.replace(
      'mode: async }',
      'mode: async }\n      - { name: vip1, type: fip, address: 10.0.0.100/24, interface: eth0 }\n      - { name: vip2, type: fip, address: 10.0.0.100/16, interface: eth1 }',
    ),
    /groups\[0\]\.resources\[2\]\.address: 10\.0\.0\.100 is already the address of resource vip1/,
  ],
  [
    'a floating IP that is an interconnect',
    base.replace('mode: async }', 'mode: async }\n      - { name: vip1, type: fip, address: 127.0.0.1/8, interface: lo }'),
    /groups\[0\]\.resources\[1\]\.address: 127\.0\.0\.1 is an interconnect address/,
  ],
  ['a server without interconnects', base.replace('{ name: node1 }', '{ name: node1, interconnects: [] }'), /servers\[0\]\.interconnects/],
];
for (const [what, text, expected] of cases) {
  t.test(`${what} is refused with the path of the fault`, async (t) => {
    const v = validateConfigText(text);
    t.equal(v.ok, false);
    if (!v.ok) t.match(v.problems.join('\n'), expected);
  });
}

t.test('fence timing: the quorum lease and the fence grace keep a loser released before the winners take over', async (t) => {
  // loser done by lease + deadline after its last heartbeat; winners declare it down timeout − interval after it at the earliest
  const cases: [number, number, number, number, number][] = [
    // interval, timeout, deadline → lease, grace
    [1000, 5000, 500, 3500, 50],
    [200, 600, 100, 300, 50],
    [200, 1000, 500, 300, 50],
    [1000, 2000, 500, 1000, 550],
  ];
  for (const [interval, timeout, deadline, lease, grace] of cases) {
    const got = fenceTiming(interval, timeout, deadline);
    t.same(got, { quorumLeaseMs: lease, minFenceGraceMs: grace }, `${interval}/${timeout}/${deadline}`);
    t.ok(got.quorumLeaseMs + deadline <= timeout - interval + got.minFenceGraceMs, 'released in time');
  }
  const v = validateConfigText(base);
  if (!v.ok) throw new Error(v.problems.join('\n'));
  t.same([v.config.cluster.networkPartition.quorumLeaseMs, v.config.cluster.networkPartition.fenceGraceMs], [3500, 50], 'the defaults');
  const longer = validateConfigText(base.replace('name: demo,', 'name: demo, networkPartition: { fenceGrace: 2s },'));
  t.equal(longer.ok && longer.config.cluster.networkPartition.fenceGraceMs, 2000, 'a longer grace is the operator’s choice');
  const short = validateConfigText(
    base.replace('name: demo,', 'name: demo, heartbeat: { interval: 1s, timeout: 2s }, networkPartition: { fenceGrace: 100ms },'),
  );
  t.match(short, {
    ok: false,
    problems: [/cluster\.networkPartition\.fenceGrace: 100ms is shorter than the 550ms a losing server may need/],
  });
});

t.test('warnings: two servers need an arbiter to survive a split, with majority or ping', async (t) => {
  const two = (method: string) =>
    base
      .replace('name: demo,', `name: demo, networkPartition: { method: [${method}], witness: "http://10.0.0.9:29100", disk: /x/lease },`)
      .replace('servers: [ { name: node1 } ]', 'servers: [ { name: node1 }, { name: node2 } ]');
  const warn = (text: string) => {
    const v = validateConfigText(text);
    if (!v.ok) throw new Error(v.problems.join('\n'));
    return configWarnings(v.config);
  };
  t.match(warn(two('majority')), [/node2 loses every split to node1, a power cut of node1 included/]);
  t.match(warn(two('ping')), [/ping alone cannot decide/]);
  t.same(warn(two('majority, witness')), [], 'a witness decides');
  t.same(warn(two('disk')), [], 'so does a disk lease');
  t.same(warn(base), [], 'one server: nothing to split');
});
