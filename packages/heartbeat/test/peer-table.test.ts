import t from 'tap';
import { PeerTable, type Received } from '@tandem/heartbeat';

const TIMEOUT = 1000;
const peers = [
  { name: 'node2', addresses: ['10.0.0.2', '10.1.0.2'] },
  { name: 'node3', addresses: ['10.0.0.3'] },
];
const hb = (over: Partial<Received> = {}): Received => ({
  server: 'node2',
  incarnation: 5,
  seq: 1,
  state: 'online',
  hears: ['node1'],
  pathIndex: 0,
  ...over,
});

type Step = { at: number } & ({ receive: Partial<Received>; on?: number } | { tick: true });

const cases: {
  name: string;
  steps: Step[];
  expect: { drops?: (string | undefined)[]; changes?: string[]; view?: Record<string, string> };
}[] = [
  {
    name: 'a first heartbeat brings the path and the peer up',
    steps: [{ at: 0, receive: {} }],
    expect: {
      drops: [undefined],
      changes: ['path node2 0 up', 'server node2 online'],
      view: { node2: 'online up,down', node3: 'offline down' },
    },
  },
  {
    name: 'a path is down only after the timeout without a heartbeat',
    steps: [
      { at: 0, receive: {} },
      { at: 1000, tick: true },
      { at: 1001, tick: true },
    ],
    expect: {
      changes: ['path node2 0 up', 'server node2 online', 'path node2 0 down', 'server node2 offline'],
      view: { node2: 'offline down,down' },
    },
  },
  {
    name: 'a repeated or older seq on a path is a replay',
    steps: [
      { at: 0, receive: { seq: 7 } },
      { at: 10, receive: { seq: 7 } },
      { at: 20, receive: { seq: 6 } },
      { at: 30, receive: { seq: 8 } },
    ],
    expect: { drops: [undefined, 'replayed', 'replayed', undefined] },
  },
  {
    name: 'each path keeps its own sequence, so paths may deliver out of order',
    steps: [
      { at: 0, receive: { seq: 7, pathIndex: 1 }, on: 1 },
      { at: 1, receive: { seq: 7, pathIndex: 0 }, on: 0 },
    ],
    expect: { drops: [undefined, undefined], view: { node2: 'online up,up' } },
  },
  {
    name: 'a heartbeat claiming another path than the one it came in on is dropped',
    steps: [{ at: 0, receive: { pathIndex: 1 }, on: 0 }],
    expect: { drops: ['wrong-path'], changes: [] },
  },
  {
    name: 'a server that is not configured is dropped',
    steps: [{ at: 0, receive: { server: 'intruder' } }],
    expect: { drops: ['unknown-server'] },
  },
  {
    name: 'a new incarnation restarts the sequence and is reported',
    steps: [
      { at: 0, receive: { seq: 100 } },
      { at: 10, receive: { incarnation: 6, seq: 1 } },
    ],
    expect: { drops: [undefined, undefined], changes: ['path node2 0 up', 'server node2 online', 'incarnation node2 6'] },
  },
  {
    name: 'an older incarnation while the peer is online is a replay of its past',
    steps: [
      { at: 0, receive: { incarnation: 6 } },
      { at: 10, receive: { incarnation: 5, seq: 99 } },
    ],
    expect: { drops: [undefined, 'stale-incarnation'] },
  },
  {
    name: 'an older incarnation from a peer that went offline is a new life',
    steps: [
      { at: 0, receive: { incarnation: 6 } },
      { at: 2000, tick: true },
      { at: 2001, receive: { incarnation: 1 } },
    ],
    expect: { drops: [undefined, undefined], view: { node2: 'online up,down' } },
  },
  {
    name: 'losing one of two paths warns that the peer is on a single path',
    steps: [
      { at: 0, receive: { seq: 1, pathIndex: 0 }, on: 0 },
      { at: 0, receive: { seq: 1, pathIndex: 1 }, on: 1 },
      { at: 600, receive: { seq: 2, pathIndex: 1 }, on: 1 },
      { at: 1100, tick: true },
    ],
    expect: {
      changes: ['path node2 0 up', 'server node2 online', 'path node2 1 up', 'path node2 0 down', 'single-path node2 1'],
      view: { node2: 'online down,up' },
    },
  },
];

t.test('the peer table', async (t) => {
  for (const c of cases) {
    const table = new PeerTable('node1', peers, { intervalMs: 100, timeoutMs: TIMEOUT });
    const drops: (string | undefined)[] = [];
    const changes: string[] = [];
    for (const step of c.steps) {
      if ('tick' in step) {
        changes.push(...table.tick(step.at).map((ch) => describe(ch)));
      } else {
        const r = table.receive(hb(step.receive), step.on ?? 0, step.at);
        drops.push(r.drop);
        changes.push(...r.changes.map((ch) => describe(ch)));
      }
    }
    if (c.expect.drops) t.same(drops, c.expect.drops, `${c.name}: drops`);
    if (c.expect.changes) t.same(changes, c.expect.changes, `${c.name}: changes`);
    if (c.expect.view) {
      const view = Object.fromEntries(table.view().map((v) => [v.name, `${v.state} ${v.paths.map((p) => p.state).join(',')}`]));
      t.match(view, c.expect.view, `${c.name}: view`);
    }
  }
});

t.test('the table says which servers it hears, with their last heartbeat', async (t) => {
  const table = new PeerTable('node1', peers, { intervalMs: 100, timeoutMs: TIMEOUT });
  table.receive(hb({ hears: ['node1', 'node3'], state: 'suspended' }), 0, 42);
  t.same(table.heard(), ['node2']);
  t.match(table.view()[0], {
    name: 'node2',
    incarnation: 5,
    reportedState: 'suspended',
    hears: ['node1', 'node3'],
    paths: [{ address: '10.0.0.2', state: 'up', lastHeardMs: 42 }],
  });
});

function describe(ch: ReturnType<PeerTable['tick']>[number]): string {
  switch (ch.kind) {
    case 'path':
      return `path ${ch.server} ${ch.pathIndex} ${ch.state}`;
    case 'server':
      return `server ${ch.server} ${ch.state}`;
    case 'incarnation':
      return `incarnation ${ch.server} ${ch.incarnation}`;
    case 'single-path':
      return `single-path ${ch.server} ${ch.pathIndex}`;
  }
}

t.test('with a quorum lease, a silent peer is quiet before it times out, and heard again at its next heartbeat', async (t) => {
  const table = new PeerTable('node1', peers, { intervalMs: 100, timeoutMs: TIMEOUT, quietMs: 400 });
  t.equal(table.nextDeadlineMs(), undefined, 'nothing heard: nothing to check');
  table.receive(hb(), 0, 0);
  t.equal(table.nextDeadlineMs(), 401, 'the next check is when node2 would become quiet');
  t.same(table.tick(400), [], 'silent for the lease exactly: not yet');
  t.same(table.tick(401), [{ kind: 'quiet', server: 'node2', quiet: true }]);
  t.same(table.tick(500), [], 'told once');
  t.equal(table.nextDeadlineMs(), 1001, 'then when its path times out');
  t.same(table.receive(hb({ seq: 2 }), 0, 600).changes, [{ kind: 'quiet', server: 'node2', quiet: false }]);
  t.same(table.heard(), ['node2']);
  t.same(
    table
      .tick(2000)
      .map((c) => c.kind)
      .sort(),
    ['path', 'quiet', 'server'],
    'quiet, then down: a peer that times out is no longer quiet',
  );
  t.equal(table.nextDeadlineMs(), undefined);
});

t.test('without a lease shorter than the timeout no peer is ever quiet', async (t) => {
  for (const lease of [undefined, TIMEOUT, 2 * TIMEOUT]) {
    const table = new PeerTable('node1', peers, { intervalMs: 100, timeoutMs: TIMEOUT, quietMs: lease });
    table.receive(hb(), 0, 0);
    t.equal(table.nextDeadlineMs(), 1001, `lease ${lease}: the next check is the timeout`);
    t.notOk(
      table.tick(1001).some((c) => c.kind === 'quiet'),
      `lease ${lease}: no quiet report`,
    );
  }
});

t.test('a peer that no longer hears this server is quiet after the lease, though it is still heard', async (t) => {
  const table = new PeerTable('node1', peers, { intervalMs: 100, timeoutMs: TIMEOUT, quietMs: 400 });
  // At 1000 node2 says it heard node1 100 ms before: they hear each other.
  table.receive(hb({ silentMs: { node1: 100 } }), 0, 1000);
  t.same(table.view()[0]?.heardUsMs, 900, 'node2 last heard node1 at 900');
  t.equal(table.nextDeadlineMs(), 1401, "quiet at the lease, counted from node2's word (900) and the interval it may lag");
  // A one-way loss: node2's heartbeats still arrive, each saying that node1 has not been heard since.
  for (let at = 1100, seq = 2; at <= 1400; at += 100, seq++) {
    t.same(table.receive(hb({ seq, silentMs: { node1: at - 900 } }), 0, at).changes, [], `heard at ${at}: not quiet yet`);
  }
  t.same(table.tick(1401), [{ kind: 'quiet', server: 'node2', quiet: true }], 'quiet: node2 has not heard node1 for the lease');
  t.same(table.receive(hb({ seq: 10, silentMs: { node1: 600 } }), 0, 1500).changes, [], 'still deaf to node1: still quiet');
  t.same(table.heard(), ['node2'], 'node2 is heard all along: online, not down');
  t.same(
    table.receive(hb({ seq: 11, silentMs: { node1: 20 } }), 0, 1600).changes,
    [{ kind: 'quiet', server: 'node2', quiet: false }],
    'node2 hears node1 again: no longer quiet',
  );
  t.same(table.silences(1700), { node2: 100 }, "what node1's own heartbeats say of the peers it has heard");
});

t.test('a peer that hears this server on time is never quiet, with a lease of one and a half intervals', async (t) => {
  // The failover benchmark's timing: interval 200 ms, lease 300 ms. node2 hears each heartbeat of
  // node1 (sent every 200 ms) up to 50 ms late, and says so in its own, which come 150 ms after.
  const table = new PeerTable('node1', peers, { intervalMs: 200, timeoutMs: 600, quietMs: 300 });
  const changes = [];
  for (let n = 1; n <= 20; n++) {
    const at = 1000 + 200 * n;
    changes.push(...table.receive(hb({ seq: n, silentMs: { node1: 150 + 50 } }), 0, at).changes, ...table.tick(at + 199));
  }
  t.same(
    changes.filter((c) => c.kind === 'quiet'),
    [],
    'its word lags by up to an interval, which is no silence',
  );
});

t.test("what a peer said of this server is forgotten when it goes offline, and only peers online are in this server's word", async (t) => {
  const table = new PeerTable('node1', peers, { intervalMs: 100, timeoutMs: TIMEOUT, quietMs: 400 });
  table.receive(hb({ silentMs: { node1: 50 } }), 0, 1000);
  t.same(table.view()[0]?.heardUsMs, 950);
  t.same(table.silences(1050), { node2: 50 });
  table.tick(3000);
  t.same(table.view()[0]?.state, 'offline');
  t.same(table.view()[0]?.heardUsMs, 0, 'offline: its word of this server is gone');
  t.same(table.silences(3000), {}, 'and this server says nothing of it until it is heard again');
  // Back after the outage, before it has heard this server again: taken to hear it from now on.
  const back = table.receive(hb({ seq: 2 }), 0, 3100).changes;
  t.notOk(
    back.some((c) => c.kind === 'quiet'),
    'not quiet on its first heartbeat back',
  );
  t.same(table.view()[0]?.heardUsMs, 3100);
  // It stays deaf to this server (a one-way loss that began during the outage): quiet a lease and an interval on.
  for (let at = 3200, seq = 3; at <= 3600; at += 100, seq++) table.receive(hb({ seq, silentMs: { node3: 10 } }), 0, at);
  t.equal(table.nextDeadlineMs(), 3601);
  t.same(table.tick(3601), [{ kind: 'quiet', server: 'node2', quiet: true }], 'quiet: it never said it heard this server again');

  // A peer that never says how long it has not heard anyone (an older version) is judged by this server's hearing alone.
  const old = new PeerTable('node1', peers, { intervalMs: 100, timeoutMs: TIMEOUT, quietMs: 400 });
  for (let at = 1000, seq = 1; at <= 2000; at += 100, seq++)
    t.same(
      old.receive(hb({ seq }), 0, at).changes.filter((c) => c.kind === 'quiet'),
      [],
    );
  t.same(old.tick(2050), [], 'never quiet while heard');
});
