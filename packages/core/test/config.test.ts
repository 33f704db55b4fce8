import t from 'tap';
import { findCycle, jsonPointerToPath, validateConfigText } from '@tandem/core';

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
