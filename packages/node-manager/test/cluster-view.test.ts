import t from 'tap';
import {
  ClusterViewTracker,
  declaredDownBy,
  placeRemoteGroups,
  sameView,
  splitLosers,
  type BridgeInput,
  type PeerView,
  type ViewInput,
} from '@tandem/node-manager';

const SERVERS = ['s1', 's2', 's3'];

function peer(server: string, state: string, incarnation: number, groups: { group: string; state: string }[] = []): PeerView {
  return {
    server,
    reach: 'reachable',
    lastHeardMs: 1,
    paths: [],
    reported: { incarnation, state, hears: [], lost: [], configGeneration: 0, sentAtMs: 0, groups, down: [], startupDone: false },
  };
}

function input(over: Partial<ViewInput> = {}): ViewInput {
  return {
    servers: SERVERS,
    self: 's2',
    selfState: 'online',
    selfIncarnation: 7,
    localGroups: [],
    heard: [
      { name: 's1', state: 'online', incarnation: 4 },
      { name: 's2', state: 'online', incarnation: 7 },
      { name: 's3', state: 'online', incarnation: 2 },
    ],
    peers: [peer('s1', 'online', 4, [{ group: 'web', state: 'online' }]), peer('s3', 'online', 2)],
    startupDone: false,
    ...over,
  };
}

t.test('each server is what hb hears and its node manager reports; the coordinator is the first online one', async (t) => {
  const tracker = new ClusterViewTracker();
  const { view, changes } = tracker.update(input(), 1000);
  t.same(
    view.servers.map((s) => [s.name, s.state, s.incarnation, s.groups.map((g) => g.group), s.local]),
    [
      ['s1', 'online', 4, ['web'], false],
      ['s2', 'online', 7, [], true],
      ['s3', 'online', 2, [], false],
    ],
  );
  t.equal(view.coordinator, 's1');
  t.same(changes, [], 'the first view has no changes');
  t.ok(view.servers.every((s) => s.sinceMs === 1000));
});

t.test('a server hb no longer hears is offline, keeps its last groups, is declared down, and the coordinator moves on', async (t) => {
  const tracker = new ClusterViewTracker();
  tracker.update(input(), 1000);
  const heard = input().heard!.map((h) => (h.name === 's1' ? { ...h, state: 'offline' } : h));
  const { view, changes } = tracker.update(input({ heard }), 2000);
  t.match(view.servers[0], { name: 's1', state: 'offline', sinceMs: 2000, groups: [{ group: 'web', state: 'online' }] });
  t.same(changes, [{ server: 's1', from: 'online', to: 'offline' }]);
  t.equal(view.coordinator, 's2');
  t.same(tracker.declaredDown(), [{ server: 's1', incarnation: 4 }]);

  // Back with the same incarnation (a frozen server waking up): still declared down.
  tracker.update(input(), 3000);
  t.same(tracker.declaredDown(), [{ server: 's1', incarnation: 4 }], 'the same life stays declared down');
  // Back as a new life: forgotten.
  const reborn = input({
    heard: input().heard!.map((h) => (h.name === 's1' ? { ...h, incarnation: 5 } : h)),
    peers: [peer('s1', 'starting', 5), peer('s3', 'online', 2)],
  });
  const after = tracker.update(reborn, 4000);
  t.same(tracker.declaredDown(), [], 'a new incarnation is a new member');
  t.match(after.view.servers[0], { state: 'starting', groups: [] }, 'a new life joins with no groups');
});

t.test('a report from an older life is not taken for the server hb hears now', async (t) => {
  const tracker = new ClusterViewTracker();
  const heard = input().heard!.map((h) => (h.name === 's1' ? { ...h, incarnation: 9 } : h));
  const { view } = tracker.update(input({ heard }), 1000);
  t.match(view.servers[0], { state: 'unknown', groups: [] });
  t.equal(view.coordinator, 's2', 'an unknown server is not the coordinator');
});

t.test('without an answer from hb the last one counts; servers never heard are offline', async (t) => {
  const tracker = new ClusterViewTracker();
  const first = tracker.update(input({ heard: undefined }), 1000);
  t.same(
    first.view.servers.map((s) => s.state),
    ['offline', 'online', 'offline'],
  );
  tracker.update(input(), 2000);
  const kept = tracker.update(input({ heard: undefined }), 3000);
  t.same(
    kept.view.servers.map((s) => s.state),
    ['online', 'online', 'online'],
  );
  t.same(tracker.declaredDown(), [], 'never heard is not declared down');
});

t.test('a server fencing itself has no coordinator; startup done is learned from any peer and kept', async (t) => {
  const tracker = new ClusterViewTracker();
  t.equal(tracker.update(input({ selfState: 'isolated' }), 1000).view.coordinator, '');
  const told = peer('s3', 'online', 2);
  told.reported!.startupDone = true;
  t.equal(tracker.update(input({ peers: [peer('s1', 'online', 4), told] }), 2000).view.startupDone, true);
  t.equal(tracker.update(input(), 3000).view.startupDone, true, 'once done, done');
});

t.test('declaredDownBy matches this server in its present incarnation only', async (t) => {
  const m = { down: [{ server: 's2', incarnation: 7 }] };
  t.equal(declaredDownBy(m, 's2', 7), true);
  t.equal(declaredDownBy(m, 's2', 8), false, 'a later life is not concerned');
  t.equal(declaredDownBy(m, 's2', 0), false, 'an unknown incarnation never fences');
  t.equal(declaredDownBy(m, 's3', 7), false);
});

t.test('sameView tells a changed view from an unchanged one', async (t) => {
  const tracker = new ClusterViewTracker();
  const a = tracker.update(input(), 1000).view;
  const b = tracker.update(input(), 2000).view;
  t.ok(sameView(a, b), 'nothing changed: the times a state was entered stay');
  t.notOk(sameView(undefined, b));
  const c = tracker.update(input({ localGroups: [{ group: 'db', state: 'starting' }] }), 3000).view;
  t.notOk(sameView(b, c));
});

t.test('status shows a group that runs on another server where it runs', async (t) => {
  const groups = [
    { name: 'web', state: 'offline', server: '', resources: [{ name: 'vip' }] },
    { name: 'db', state: 'online', server: 's2', resources: [] },
  ];
  t.same(placeRemoteGroups(groups, [{ server: 's1', group: 'web', state: 'online' }]), [
    { name: 'web', state: 'online', server: 's1', resources: [] },
    { name: 'db', state: 'online', server: 's2', resources: [] },
  ]);
});

t.test('declareDown: a server this one still hears is declared down once per life, and stays so while heard', async (t) => {
  const tracker = new ClusterViewTracker();
  tracker.update(input(), 1000);
  t.equal(tracker.declareDown('s3', 2), true);
  t.equal(tracker.declareDown('s3', 2), false, 'already declared in that life');
  t.equal(tracker.declareDown('s1', 0), false, 'an unknown life is never declared');
  tracker.update(input(), 2000);
  t.same(tracker.declaredDown(), [{ server: 's3', incarnation: 2 }], 'still heard, still declared: it must fence itself');
  const heard = input().heard!.map((h) => (h.name === 's3' ? { ...h, incarnation: 3 } : h));
  tracker.update(input({ heard, peers: [peer('s1', 'online', 4), peer('s3', 'online', 3)] }), 3000);
  t.same(tracker.declaredDown(), [], 'back as a new life: forgotten');
});

// ---------------------------------------------------------------- a split that is not a clique

t.test('a server not heard here but by a peer that is: unreachable, holding its groups; offline once nobody hears it', async (t) => {
  const tracker = new ClusterViewTracker();
  tracker.update(input(), 1000);
  const heard = input().heard!.map((h) => (h.name === 's1' ? { ...h, state: 'offline' } : h));
  // s3 still hears s1 within its quorum lease.
  const s3 = peer('s3', 'online', 2);
  s3.reported = { ...s3.reported!, hears: ['s1', 's2'] };
  const peers = [peer('s1', 'online', 4, [{ group: 'web', state: 'online' }]), s3];
  let { view, changes } = tracker.update(input({ heard, peers }), 2000);
  t.match(view.servers[0], { name: 's1', state: 'unreachable', groups: [{ group: 'web', state: 'online' }] });
  t.same(changes, [{ server: 's1', from: 'online', to: 'unreachable' }]);
  t.equal(view.coordinator, 's2', 'not online here: the next server coordinates');
  t.same(tracker.declaredDown(), [], 'not declared down: it may still run its groups');
  // s3 reports s1 lost (silent for its quorum lease): nobody hears it any more.
  s3.reported = { ...s3.reported!, lost: [{ server: 's1', silentMs: 1200 }] };
  ({ view, changes } = tracker.update(input({ heard, peers }), 3000));
  t.match(view.servers[0], { name: 's1', state: 'offline', sinceMs: 3000 });
  t.same(changes, [{ server: 's1', from: 'unreachable', to: 'offline' }]);
  t.same(tracker.declaredDown(), [{ server: 's1', incarnation: 4 }]);
});

t.test('only a peer this server hears, in its present life, makes a server unreachable rather than offline', async (t) => {
  const s3 = peer('s3', 'online', 2);
  s3.reported = { ...s3.reported!, hears: ['s1', 's2'] };
  const cases: [string, Partial<ViewInput>][] = [
    [
      's3 is not heard here either',
      { heard: input().heard!.map((h) => (h.name === 's2' ? h : { ...h, state: 'offline' })), peers: [peer('s1', 'online', 4), s3] },
    ],
    [
      "a report from s3's previous life",
      {
        heard: input().heard!.map((h) => (h.name === 's1' ? { ...h, state: 'offline' } : h.name === 's3' ? { ...h, incarnation: 3 } : h)),
        peers: [peer('s1', 'online', 4), s3],
      },
    ],
  ];
  for (const [name, over] of cases) {
    const tracker = new ClusterViewTracker();
    tracker.update(input(), 1000);
    t.equal(tracker.update(input(over), 2000).view.servers[0]!.state, 'offline', name);
  }
});

/** A peer as the bridge sees it: reachable, its report received at `receivedMs`, with the servers it lost and for how long. */
function reporting(
  server: string,
  incarnation: number,
  over: { lost?: [string, number][]; state?: string; reach?: PeerView['reach']; receivedMs?: number } = {},
): PeerView {
  const p = peer(server, over.state ?? 'online', incarnation);
  const lost = (over.lost ?? []).map(([s, silentMs]) => ({ server: s, silentMs }));
  return { ...p, lastHeardMs: over.receivedMs ?? NOW, reach: over.reach ?? 'reachable', reported: { ...p.reported!, lost } };
}

const NOW = 100_000;
const LIVES = new Map([
  ['s1', 4],
  ['s2', 7],
  ['s3', 2],
  ['s4', 9],
]);
/** Seen from s3 (interval 200 ms, lease 1000 ms): it heard s1 and s2 50 ms ago. */
const bridge = (peers: PeerView[], over: Partial<BridgeInput> = {}): BridgeInput => ({
  servers: ['s1', 's2', 's3'],
  nowMs: NOW,
  quorumLeaseMs: 1000,
  intervalMs: 200,
  heardAtMs: new Map([
    ['s1', NOW - 50],
    ['s2', NOW - 50],
  ]),
  incarnations: LIVES,
  peers,
  ...over,
});

t.test('splitLosers: a peer lost by another while heard here well after that: the later of the two is declared down', async (t) => {
  // s1 has not heard s2 for 1200 ms; s3 heard s2 50 ms ago: 1150 ms later than s1 did, more than lease + interval / 2.
  const losers = splitLosers(bridge([reporting('s1', 4, { lost: [['s2', 1200]] }), reporting('s2', 7)]));
  t.same(
    losers.map((l) => [l.server, l.incarnation, l.keeps]),
    [['s2', 7, 's1']],
  );
  t.equal(
    losers[0]!.reason,
    's1 and s2 no longer hear each other (s1 lost s2, heard here 1150 ms after s1 last heard it) while this server hears both: s2, the later in configuration order, is declared down',
  );
  // Either side's report will do, and configuration order decides, not who noticed.
  t.same(
    splitLosers(bridge([reporting('s1', 4), reporting('s2', 7, { lost: [['s1', 1200]] })])).map((l) => l.server),
    ['s2'],
  );
  t.same(
    splitLosers(bridge([reporting('s1', 4, { lost: [['s2', 1200]] }), reporting('s2', 7)], { servers: ['s2', 's1', 's3'] })).map((l) => [
      l.server,
      l.keeps,
    ]),
    [['s1', 's2']],
  );
});

t.test('splitLosers: a server that died is lost by all at once, and declares nobody down', async (t) => {
  const died = [reporting('s1', 4, { lost: [['s2', 1100]] }), reporting('s2', 7)];
  // s2's last heartbeat reached s1 and s3 together (1100 ms ago); s3 has not noticed yet, or it reached s3 one interval later (a heartbeat s1 missed).
  for (const heardS2 of [NOW - 1100, NOW - 1100 + 200, NOW - 1100 + 600]) {
    const heardAtMs = new Map([
      ['s1', NOW - 50],
      ['s2', heardS2],
    ]);
    t.same(splitLosers(bridge(died, { heardAtMs, quorumLeaseMs: 2000 })), [], `s3 heard s2 ${NOW - heardS2} ms ago`);
  }
  t.same(splitLosers(bridge(died)), [], 's3 itself no longer hears s2 within its lease: not a candidate');
});

t.test('splitLosers declares nobody down unless the two still run groups, answer and are heard by this server', async (t) => {
  const lostS2: [string, number][] = [['s2', 1200]];
  const cases: [string, PeerView[], Partial<BridgeInput>?][] = [
    ['nobody lost anybody', [reporting('s1', 4), reporting('s2', 7)]],
    ['s2 is fencing itself already', [reporting('s1', 4, { lost: lostS2 }), reporting('s2', 7, { state: 'isolated' })]],
    ['s1 is not running groups', [reporting('s1', 4, { lost: lostS2, state: 'stopped' }), reporting('s2', 7)]],
    ['s1 no longer answers', [reporting('s1', 4, { lost: lostS2, reach: 'unreachable' }), reporting('s2', 7)]],
    ["a report from s1's previous life", [reporting('s1', 3, { lost: lostS2 }), reporting('s2', 7)]],
    [
      'a life this server does not know yet',
      [reporting('s1', 4, { lost: lostS2 }), reporting('s2', 7)],
      { incarnations: new Map([['s1', 4]]) },
    ],
  ];
  for (const [name, peers, over] of cases) t.same(splitLosers(bridge(peers, over)), [], name);
});

t.test('splitLosers on four servers: the earliest pair decides first, and a server that leaves takes nobody with it', async (t) => {
  // s4 hears all; s2 lost s1 and s3; s1 and s3 hear each other.
  const peers = [
    reporting('s1', 4, { lost: [['s2', 1200]] }),
    reporting('s2', 7, {
      lost: [
        ['s1', 1200],
        ['s3', 1200],
      ],
    }),
    reporting('s3', 2, { lost: [['s2', 1200]] }),
  ];
  const over = {
    servers: ['s1', 's2', 's3', 's4'],
    heardAtMs: new Map([
      ['s1', NOW - 50],
      ['s2', NOW - 50],
      ['s3', NOW - 50],
    ]),
  };
  const losers = splitLosers(bridge(peers, over));
  t.same(
    losers.map((l) => [l.server, l.keeps]),
    [['s2', 's1']],
    's2 leaves for s1; s3 stays, since s2, which it lost, leaves anyway: s1, s3 and s4 remain',
  );
  t.same(splitLosers(bridge([...peers].reverse(), over)), losers, 'the order of the reports does not matter');
});
