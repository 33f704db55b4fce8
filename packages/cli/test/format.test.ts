import t from 'tap';
import { TandemError } from '@tandem/core';
import { v1 } from '@tandem/protocol';
import {
  EXIT,
  UsageError,
  errorLine,
  exitCodeFor,
  formatAlerts,
  formatProblems,
  formatStatus,
  parseInterval,
  parseResourceRef,
  renderTable,
  toJsonText,
} from '@tandem/cli';
import { parseNode } from '../dist/args.js';
import { NEXT_STEP, configReplyToJson, formatConfigApply, formatConfigDiff } from '../dist/format.js';

t.test('a table pads each column to its widest cell and trims the line ends', async (t) => {
  t.same(
    renderTable(
      ['NAME', 'STATE'],
      [
        ['web', 'online'],
        ['database', ''],
      ],
    ),
    ['NAME      STATE', 'web       online', 'database'],
  );
});

const status = {
  cluster: 'demo',
  server: 'node1',
  state: 'online',
  servers: [
    { name: 'node1', state: 'online', local: true, paths: [] },
    {
      name: 'node2',
      state: 'offline',
      paths: [
        { address: '10.0.0.2', state: 'down' },
        { address: '192.168.0.2', state: 'up' },
      ],
    },
  ],
  groups: [
    {
      name: 'shop',
      state: 'online',
      server: 'node1',
      resources: [
        { name: 'vip', state: 'online' },
        { name: 'app', state: 'online', pid: 4242, alive: true },
      ],
    },
    { name: 'batch', state: 'offline', resources: [{ name: 'job', state: 'start-failed', pid: 77, alive: false, detail: 'exit 3' }] },
  ],
  monitors: [
    {
      name: 'app-alive',
      type: 'pid',
      state: 'error',
      target: 'app',
      consecutiveFailures: 2,
      reactivations: 1,
      lastResult: 'pid 4242 gone',
    },
  ],
  daemons: [
    { name: 'nm', pid: 100, state: 'running', rssKb: 51200 },
    { name: 'md', pid: 0, state: 'unreachable', rssKb: 0 },
  ],
  mirrorSummary: 'no mirrors',
};

t.test('the status page shows the header, then servers, groups with their resources, monitors and daemons', async (t) => {
  t.equal(
    formatStatus(status),
    [
      'cluster demo  server node1  state online',
      '',
      'SERVERS',
      '  NAME           STATE    PATHS',
      '  node1 (local)  online   -',
      '  node2          offline  10.0.0.2 down, 192.168.0.2 up',
      '',
      'GROUPS',
      '  NAME   STATE         SERVER  PID   ALIVE  DETAIL',
      '  shop   online        node1',
      '    vip  online                -     -',
      '    app  online                4242  yes',
      '  batch  offline       -',
      '    job  start-failed          77    no     exit 3',
      '',
      'MONITORS',
      '  NAME       TYPE  STATE  TARGET  FAILURES  REACTIVATIONS  LAST RESULT',
      '  app-alive  pid   error  app     2         1              pid 4242 gone',
      '',
      'DAEMONS',
      '  NAME  PID  RSS MB  STATE',
      '  nm    100  50.0    running',
      '  md    -    -       unreachable',
      '',
      'MIRRORS  no mirrors',
      '',
    ].join('\n'),
  );
});

t.test('an empty section says none rather than printing a bare header', async (t) => {
  const page = formatStatus({ cluster: 'demo', server: 'node1', state: 'stopped' });
  t.match(page, /^cluster demo {2}server node1 {2}state stopped\n/);
  t.match(page, /GROUPS\n {2}\(none\)\n/);
  t.match(page, /MONITORS\n {2}\(none\)\n/);
});

t.test('alerts are one line each with time, id, severity, origin, message and details', async (t) => {
  const text = formatAlerts([
    {
      id: 'TND-NM-0001',
      timeMs: Date.UTC(2024, 0, 2, 3, 4, 5),
      severity: 'info',
      server: 'node1',
      daemon: 'nm',
      message: 'cluster service started',
    },
    {
      id: 'TND-NM-0010',
      timeMs: Date.UTC(2024, 0, 2, 3, 4, 6),
      severity: 'error',
      server: 'node1',
      daemon: 'nm',
      message: 'final action',
      details: { group: 'web', empty: '' },
    },
  ]);
  t.equal(
    text,
    [
      'TIME                  ID           SEVERITY  WHERE     MESSAGE',
      '2024-01-02 03:04:05Z  TND-NM-0001  info      node1/nm  cluster service started',
      '2024-01-02 03:04:06Z  TND-NM-0010  error     node1/nm  final action  (group=web)',
      '',
    ].join('\n'),
  );
  t.equal(formatAlerts([]), '(no events)\n');
});

t.test('a failed validation lists each problem on its own line', async (t) => {
  t.equal(
    formatProblems('/etc/tandem/cluster.yaml', [
      'servers: must NOT have fewer than 1 items',
      'groups[0].resources[0].start: must be string',
    ]),
    'configuration /etc/tandem/cluster.yaml is invalid (2 problems):\n  servers: must NOT have fewer than 1 items\n  groups[0].resources[0].start: must be string\n',
  );
});

t.test('json output writes 64-bit defaults as plain numbers', async (t) => {
  const decoded = v1.ClusterStatus.decode(v1.ClusterStatus.encode({ servers: [{ name: 'node1', state: 'online' }] }).finish());
  const json = JSON.parse(toJsonText(v1.ClusterStatus.toObject(decoded, { defaults: true }))) as {
    servers: { incarnation: unknown }[];
    configGeneration: unknown;
  };
  t.equal(json.servers[0]?.incarnation, 0);
  t.equal(json.configGeneration, 0);
});

const refs: [string, string | undefined, { group: string; resource: string } | RegExp][] = [
  ['web/app', undefined, { group: 'web', resource: 'app' }],
  ['app', 'web', { group: 'web', resource: 'app' }],
  ['web/app', 'web', { group: 'web', resource: 'app' }],
  ['web/app', 'db', /is in group web, not db/],
  ['app', undefined, /needs its group/],
  ['/app', undefined, /must be GROUP\/RESOURCE/],
  ['web/', undefined, /must be GROUP\/RESOURCE/],
  ['a/b/c', undefined, /must be GROUP\/RESOURCE/],
];
for (const [name, group, expected] of refs) {
  t.test(
    `resource ${name}${group ? ` --group ${group}` : ''} ${expected instanceof RegExp ? 'is a usage error' : 'names its group and resource'}`,
    async (t) => {
      if (expected instanceof RegExp) t.throws(() => parseResourceRef(name, group), { name: 'UsageError', message: expected });
      else t.same(parseResourceRef(name, group), expected);
    },
  );
}

t.test('watch intervals are durations of at least 100ms', async (t) => {
  t.equal(parseInterval('1s'), 1000);
  t.equal(parseInterval('250ms'), 250);
  t.throws(() => parseInterval('2'), UsageError);
  t.throws(() => parseInterval('50ms'), UsageError);
});

t.test('exit codes tell usage, unavailable and timeout apart from other errors', async (t) => {
  t.equal(exitCodeFor(new UsageError('x')), EXIT.USAGE);
  t.equal(exitCodeFor(new TandemError('UNAVAILABLE', 'tandem-nm is not running')), EXIT.UNAVAILABLE);
  t.equal(exitCodeFor(new TandemError('TIMEOUT', 'late')), EXIT.TIMEOUT);
  t.equal(exitCodeFor(new TandemError('REFUSED', 'no')), EXIT.ERROR);
  t.equal(exitCodeFor(new Error('odd')), EXIT.ERROR);
  t.equal(
    errorLine(new TandemError('REFUSED', 'group shop cannot start: cluster service is stopped')),
    'tandem: group shop cannot start: cluster service is stopped',
  );
  t.equal(errorLine(new Error('first line\nsecond line')), 'tandem: first line');
});

t.test('a config diff is one line per change and the level last', async (t) => {
  t.equal(
    formatConfigDiff({ changes: ['groups: + shop', 'monitors[app-alive].interval: 5000 ms -> 2000 ms'], level: 'restart-daemons' }),
    'groups: + shop\nmonitors[app-alive].interval: 5000 ms -> 2000 ms\nlevel: restart-daemons\n',
  );
  t.equal(formatConfigDiff({ changes: [], level: 'none' }), '(no change)\nlevel: none\n');
});

t.test('a config apply says where the generation went and what the operator does next for each level', async (t) => {
  for (const level of ['none', 'restart-daemons', 'restart-cluster']) {
    const text = formatConfigApply({ changes: ['x: 1 -> 2'], level, generation: 3, servers: ['node1', 'node2'] });
    t.equal(text, `x: 1 -> 2\nlevel: ${level}\ngeneration 3 installed on node1, node2\n${NEXT_STEP[level]}\n`, level);
  }
  t.match(NEXT_STEP['restart-daemons'], /one server at a time/);
  t.match(NEXT_STEP['restart-cluster'], /every server/);
  t.match(
    formatConfigApply({ changes: [], level: 'restart-everything', servers: [] }),
    /^\(no change\)\nlevel: restart-everything\ninstalled on no server\nnext: see "Changing the configuration of a running cluster" in docs\/configuration\.md\n$/,
  );
});

t.test('a config reply as JSON has every field, the generation as a number', async (t) => {
  const decoded = v1.ConfigReply.decode(
    v1.ConfigReply.encode({ changes: ['groups: - web'], level: 'restart-daemons', generation: 4 }).finish(),
  );
  t.same(configReplyToJson(decoded), {
    yaml: '',
    path: '',
    generation: 4,
    problems: [],
    changes: ['groups: - web'],
    level: 'restart-daemons',
    servers: [],
  });
});

t.test('--node takes a server name as cluster.yaml writes it', async (t) => {
  t.equal(parseNode(undefined), undefined);
  t.equal(parseNode('node2'), 'node2');
  t.equal(parseNode('db-1.site_a'), 'db-1.site_a');
  for (const bad of ['', '2nodes', 'node 2', 'node2,node3', `n${'x'.repeat(63)}`]) {
    t.throws(() => parseNode(bad), { name: 'UsageError', message: /expected a server name/ }, JSON.stringify(bad));
  }
});
