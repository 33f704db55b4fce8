import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import t from 'tap';
import type { CommandResult } from '@tandem/core';
import {
  acquireDiskLease,
  askWitness,
  decidePartition,
  defaultDiskLeaseTtlMs,
  holdOnLease,
  leaseUrl,
  parseDiskLease,
  pingAny,
  resolvePartition,
  type HoldOnInput,
  type PartitionChecks,
  type PartitionEffects,
  type PartitionMethod,
  type ResolveInput,
} from '@tandem/node-manager';

// ---------------------------------------------------------------- the decision

const S3 = ['s1', 's2', 's3'];
const S2 = ['s1', 's2'];
const S4 = ['s1', 's2', 's3', 's4'];

const granted = { result: 'granted', holder: ['s2'], expiresMs: 30_000 } as const;
const refused = { result: 'refused', holder: ['s1'] } as const;
const witnessDown = { result: 'unavailable', reason: 'connect ECONNREFUSED 10.0.0.9:29100' } as const;
const answered = { result: 'answered', target: '10.0.0.1' } as const;
const noAnswer = { result: 'none', targets: ['10.0.0.1'], reason: '10.0.0.1: ping exited with code 1' } as const;
const held = { result: 'held', holder: ['s1', 's2'], expiresAtMs: 1 } as const;
const heldByOther = { result: 'held-by-other', holder: ['s1'], server: 's1' } as const;
const diskDown = { result: 'unavailable', reason: 'cannot read /shared/lease: EIO' } as const;

const decisions: {
  name: string;
  methods: PartitionMethod[];
  servers: string[];
  self: string;
  heard: string[];
  checks?: PartitionChecks;
  survive: boolean;
  reason: string | RegExp;
  decidedBy?: string[];
}[] = [
  {
    name: 'two of three servers are a majority',
    methods: ['majority'],
    servers: S3,
    self: 's2',
    heard: ['s1', 's2'],
    survive: true,
    reason: 'majority: 2 of 3 servers (s1, s2) are heard',
  },
  {
    name: 'one of three servers is a minority and loses',
    methods: ['majority'],
    servers: S3,
    self: 's3',
    heard: ['s3'],
    survive: false,
    reason: 'majority: only 1 of 3 servers (s3) is heard, not more than half',
  },
  {
    name: 'a lone server of a one-server cluster survives',
    methods: ['majority'],
    servers: ['s1'],
    self: 's1',
    heard: [],
    survive: true,
    reason: 'majority: 1 of 1 servers (s1) is heard',
  },
  {
    name: 'a tie goes to the partition holding the first server',
    methods: ['majority'],
    servers: S2,
    self: 's1',
    heard: ['s1'],
    survive: true,
    reason: 'majority: tie, 1 of 2 servers (s1) is heard, exactly half, broken by the first server: this partition holds s1',
    decidedBy: ['majority', 'first-server'],
  },
  {
    name: 'a tie without the first server loses',
    methods: ['majority'],
    servers: S2,
    self: 's2',
    heard: ['s2'],
    survive: false,
    reason: 'majority: tie, 1 of 2 servers (s2) is heard, exactly half, broken by the first server: s1 is not in this partition',
  },
  {
    name: 'a two-two split of four servers goes to the half with the first server',
    methods: ['majority'],
    servers: S4,
    self: 's4',
    heard: ['s4', 's1'],
    survive: true,
    reason: /^majority: tie, 2 of 4 servers \(s1, s4\) are heard, exactly half, broken by the first server/,
  },
  {
    name: 'a two-two split of four servers: the half without the first server loses',
    methods: ['majority'],
    servers: S4,
    self: 's2',
    heard: ['s2', 's3'],
    survive: false,
    reason: /s1 is not in this partition$/,
  },
  {
    name: 'a tie is decided by the witness when it is configured, even without the first server',
    methods: ['majority', 'witness'],
    servers: S2,
    self: 's2',
    heard: ['s2'],
    checks: { witness: granted },
    survive: true,
    reason: 'majority: tie, 1 of 2 servers (s2) is heard, exactly half, decided by the arbiter; witness: lease granted to s2',
    decidedBy: ['majority', 'witness'],
  },
  {
    name: 'a tie lost at the witness loses even with the first server',
    methods: ['majority', 'witness'],
    servers: S2,
    self: 's1',
    heard: ['s1'],
    checks: { witness: refused },
    survive: false,
    reason: 'witness: lease held by s1',
  },
  {
    name: 'a tie is decided by the disk lease when it is configured',
    methods: ['majority', 'disk'],
    servers: S2,
    self: 's2',
    heard: ['s2'],
    checks: { disk: held },
    survive: true,
    reason: /disk: lease held by this partition$/,
  },
  {
    name: 'the arbiter decides a tie wherever it is in the list',
    methods: ['witness', 'majority'],
    servers: S2,
    self: 's2',
    heard: ['s2'],
    checks: { witness: granted },
    survive: true,
    reason: 'witness: lease granted to s2; majority: tie, 1 of 2 servers (s2) is heard, exactly half, decided by the arbiter',
  },
  {
    name: 'ping never breaks a tie: both halves of an interconnect split can reach the targets',
    methods: ['majority', 'ping'],
    servers: S2,
    self: 's2',
    heard: ['s2'],
    checks: { ping: answered },
    survive: false,
    reason: /broken by the first server: s1 is not in this partition$/,
  },
  {
    name: 'ping with the first server survives a tie',
    methods: ['majority', 'ping'],
    servers: S2,
    self: 's1',
    heard: ['s1'],
    checks: { ping: answered },
    survive: true,
    reason: /broken by the first server: this partition holds s1; ping: 10\.0\.0\.1 answered$/,
  },
  {
    name: 'a majority refused by the witness loses (all methods must agree)',
    methods: ['majority', 'witness'],
    servers: S3,
    self: 's1',
    heard: ['s1', 's2'],
    checks: { witness: { result: 'refused', holder: ['s3'] } },
    survive: false,
    reason: 'witness: lease held by s3',
  },
  {
    name: 'a majority that cannot reach the witness loses',
    methods: ['majority', 'witness'],
    servers: S3,
    self: 's1',
    heard: ['s1', 's2'],
    checks: { witness: witnessDown },
    survive: false,
    reason: 'witness: unavailable (connect ECONNREFUSED 10.0.0.9:29100): a server that cannot decide loses',
  },
  {
    name: 'a minority loses even when the witness granted the lease, and majority is named',
    methods: ['witness', 'majority'],
    servers: S3,
    self: 's3',
    heard: ['s3'],
    checks: { witness: granted },
    survive: false,
    reason: /^majority: only 1 of 3/,
  },
  {
    name: 'a majority that lost its own network loses',
    methods: ['majority', 'ping'],
    servers: S3,
    self: 's1',
    heard: ['s1', 's2'],
    checks: { ping: noAnswer },
    survive: false,
    reason: 'ping: none of 10.0.0.1 answered (10.0.0.1: ping exited with code 1): this server lost its own network',
  },
  {
    name: 'majority, ping and witness all saying survive survive, every reason named',
    methods: ['majority', 'ping', 'witness'],
    servers: S3,
    self: 's2',
    heard: ['s2', 's3'],
    checks: { ping: answered, witness: granted },
    survive: true,
    reason: 'majority: 2 of 3 servers (s2, s3) are heard; ping: 10.0.0.1 answered; witness: lease granted to s2',
  },
  {
    name: 'the witness alone: granted survives',
    methods: ['witness'],
    servers: S2,
    self: 's2',
    heard: ['s2'],
    checks: { witness: granted },
    survive: true,
    reason: 'witness: lease granted to s2',
  },
  {
    name: 'the witness alone: refused loses',
    methods: ['witness'],
    servers: S2,
    self: 's2',
    heard: ['s2'],
    checks: { witness: refused },
    survive: false,
    reason: 'witness: lease held by s1',
  },
  {
    name: 'the witness alone: unavailable loses',
    methods: ['witness'],
    servers: S2,
    self: 's1',
    heard: ['s1'],
    checks: { witness: witnessDown },
    survive: false,
    reason: /^witness: unavailable .*a server that cannot decide loses$/,
  },
  {
    name: 'a configured method whose check is missing cannot decide and loses',
    methods: ['witness'],
    servers: S2,
    self: 's1',
    heard: ['s1'],
    survive: false,
    reason: 'witness: not asked: a server that cannot decide loses',
  },
  {
    name: 'ping alone: a target answered survives',
    methods: ['ping'],
    servers: S2,
    self: 's2',
    heard: ['s2'],
    checks: { ping: answered },
    survive: true,
    reason: 'ping: 10.0.0.1 answered',
  },
  {
    name: 'ping alone: no target answered loses',
    methods: ['ping'],
    servers: S2,
    self: 's2',
    heard: ['s2'],
    checks: { ping: noAnswer },
    survive: false,
    reason: /^ping: none of 10\.0\.0\.1 answered/,
  },
  {
    name: 'ping without targets cannot decide and loses',
    methods: ['ping'],
    servers: S2,
    self: 's1',
    heard: ['s1'],
    checks: { ping: { result: 'not-configured' } },
    survive: false,
    reason: 'ping: no ping targets are configured: a server that cannot decide loses',
  },
  {
    name: 'disk alone: the lease held survives',
    methods: ['disk'],
    servers: S2,
    self: 's2',
    heard: ['s2'],
    checks: { disk: held },
    survive: true,
    reason: 'disk: lease held by this partition',
  },
  {
    name: 'disk alone: the lease held by the other side loses',
    methods: ['disk'],
    servers: S2,
    self: 's2',
    heard: ['s2'],
    checks: { disk: heldByOther },
    survive: false,
    reason: 'disk: lease held by s1 (written by s1)',
  },
  {
    name: 'disk alone: shared storage unavailable loses',
    methods: ['disk'],
    servers: S2,
    self: 's1',
    heard: ['s1'],
    checks: { disk: diskDown },
    survive: false,
    reason: 'disk: unavailable (cannot read /shared/lease: EIO): a server that cannot decide loses',
  },
  {
    name: 'the method that answered lose is named before one that was not asked',
    methods: ['witness', 'ping'],
    servers: S2,
    self: 's1',
    heard: ['s1'],
    checks: { ping: noAnswer },
    survive: false,
    reason: /^ping: none of/,
  },
  {
    name: 'servers heard but not configured do not count, and this server always counts',
    methods: ['majority'],
    servers: S3,
    self: 's3',
    heard: ['s2', 'x', 'y'],
    survive: true,
    reason: 'majority: 2 of 3 servers (s2, s3) are heard',
  },
  {
    name: 'a server missing from the configuration cannot decide and loses',
    methods: ['majority'],
    servers: S2,
    self: 'x',
    heard: ['x', 's1', 's2'],
    survive: false,
    reason: 'this server x is not in the configuration: it cannot decide, so it loses',
  },
  {
    name: 'no configured method cannot decide and loses',
    methods: [],
    servers: S2,
    self: 's1',
    heard: S2,
    survive: false,
    reason: 'no partition method is configured: a server that cannot decide loses',
  },
];

t.test('the partition decision follows the rules of docs/partition.md', async (t) => {
  for (const c of decisions) {
    const d = decidePartition({ methods: c.methods, servers: c.servers, self: c.self, heard: c.heard, checks: c.checks ?? {} });
    t.equal(d.survive, c.survive, `${c.name}: survive`);
    if (typeof c.reason === 'string') t.equal(d.reason, c.reason, `${c.name}: reason`);
    else t.match(d.reason, c.reason, `${c.name}: reason`);
    t.notMatch(d.reason, /\n/, `${c.name}: one line`);
    if (c.decidedBy)
      t.same(
        d.perMethod.map((v) => v.method),
        c.decidedBy,
        `${c.name}: perMethod`,
      );
  }
});

t.test('every configured method has its verdict in perMethod, in configuration order', async (t) => {
  const d = decidePartition({
    methods: ['disk', 'majority', 'ping', 'witness'],
    servers: S3,
    self: 's1',
    heard: ['s1', 's2'],
    checks: { disk: held, ping: answered, witness: refused },
  });
  t.same(
    d.perMethod.map((v) => [v.method, v.verdict]),
    [
      ['disk', 'survive'],
      ['majority', 'survive'],
      ['ping', 'survive'],
      ['witness', 'lose'],
    ],
  );
  t.equal(d.survive, false);
});

// ---------------------------------------------------------------- the order of the checks

function fakeEffects(outcomes: PartitionChecks): { effects: PartitionEffects; calls: string[]; asked: unknown[] } {
  const calls: string[] = [];
  const asked: unknown[] = [];
  return {
    calls,
    asked,
    effects: {
      askWitness: async (url, request, timeoutMs) => {
        calls.push('witness');
        asked.push({ url, request, timeoutMs });
        return outcomes.witness ?? witnessDown;
      },
      pingAny: async () => {
        calls.push('ping');
        return outcomes.ping ?? noAnswer;
      },
      acquireDiskLease: async (opts) => {
        calls.push('disk');
        asked.push(opts);
        return outcomes.disk ?? diskDown;
      },
    },
  };
}

const resolveInput = (over: Partial<ResolveInput> & { methods: PartitionMethod[] }): ResolveInput => ({
  cluster: 'demo',
  networkPartition: {
    methods: over.methods,
    witness: 'http://127.0.0.1:29100',
    pingTargets: ['10.0.0.1'],
    disk: '/shared/lease',
    fenceGraceMs: 700,
  },
  servers: S3,
  self: 's1',
  heard: ['s1', 's2'],
  timeoutMs: 5000,
  disk: { ttlMs: 6000, settleMs: 100 },
  ...over,
});

t.test('a minority asks nothing outside: it must not take a lease the majority needs', async (t) => {
  const f = fakeEffects({ witness: granted, ping: answered, disk: held });
  const d = await resolvePartition(
    resolveInput({ methods: ['witness', 'ping', 'disk', 'majority'], self: 's3', heard: ['s3'] }),
    f.effects,
  );
  t.same(f.calls, []);
  t.equal(d.survive, false);
  t.match(d.reason, /^majority: only 1 of 3/);
});

t.test('a server cut off from its own network does not ask the witness', async (t) => {
  const f = fakeEffects({ witness: granted, ping: noAnswer });
  const d = await resolvePartition(resolveInput({ methods: ['witness', 'ping'] }), f.effects);
  t.same(f.calls, ['ping']);
  t.equal(d.survive, false);
  t.match(d.reason, /^ping: none of/);
});

t.test('the witness is asked for the partition this server hears, in configuration order', async (t) => {
  const f = fakeEffects({ witness: { result: 'granted', holder: ['s1', 's2'], expiresMs: 30_000 } });
  const d = await resolvePartition(resolveInput({ methods: ['majority', 'witness'], self: 's2', heard: ['s2', 's1', 'x'] }), f.effects);
  t.same(f.calls, ['witness']);
  const asked = f.asked[0] as { url: string; request: unknown; timeoutMs: number };
  t.equal(asked.url, 'http://127.0.0.1:29100');
  t.same(asked.request, { cluster: 'demo', server: 's2', members: ['s1', 's2'] });
  t.ok(asked.timeoutMs > 0 && asked.timeoutMs <= 5000, 'within the timeout');
  t.equal(d.survive, true);
});

t.test('an arbiter that refuses stops the next one from taking its lease', async (t) => {
  const f = fakeEffects({ witness: refused, disk: held });
  const d = await resolvePartition(resolveInput({ methods: ['witness', 'disk'] }), f.effects);
  t.same(f.calls, ['witness']);
  t.equal(d.reason, 'witness: lease held by s1');
});

t.test('the disk lease is asked with the cluster, this server, its partition and the lease times', async (t) => {
  const f = fakeEffects({ disk: held });
  const d = await resolvePartition(resolveInput({ methods: ['majority', 'disk'], servers: S2, heard: ['s1'] }), f.effects);
  t.same(f.calls, ['disk']);
  t.match(f.asked[0], { path: '/shared/lease', cluster: 'demo', server: 's1', members: ['s1'], ttlMs: 6000, settleMs: 100 });
  t.equal(d.survive, true);
});

t.test('a method without its setting cannot decide and loses without asking anything', async (t) => {
  const f = fakeEffects({ witness: granted });
  const input = resolveInput({ methods: ['majority', 'witness'] });
  delete input.networkPartition.witness;
  const d = await resolvePartition(input, f.effects);
  t.same(f.calls, []);
  t.equal(d.survive, false);
  t.equal(d.reason, 'witness: unavailable (no witness URL is configured): a server that cannot decide loses');
});

// ---------------------------------------------------------------- ping

const runner =
  (answers: Record<string, CommandResult>, seen: string[][] = []) =>
  async (file: string, args: string[]): Promise<CommandResult> => {
    seen.push([file, ...args]);
    return answers[args[args.length - 1] as string] ?? { code: 1, stdout: '', failure: 'ping exited with code 1' };
  };

t.test('ping survives when any target answers, and says which', async (t) => {
  const seen: string[][] = [];
  const r = await pingAny(['10.0.0.1', '10.0.0.2'], 3000, runner({ '10.0.0.2': { code: 0, stdout: '', failure: '' } }, seen));
  t.same(r, { result: 'answered', target: '10.0.0.2' });
  t.same(seen[0], ['ping', '-c', '1', '-W', '3', '10.0.0.1']);
});

t.test('ping with no target answering lists every failure', async (t) => {
  const r = await pingAny(
    ['10.0.0.1', '-f'],
    500,
    runner({ '10.0.0.1': { code: null, stdout: '', failure: 'ping timed out after 500 ms' } }),
  );
  t.same(r, { result: 'none', targets: ['10.0.0.1', '-f'], reason: '10.0.0.1: ping timed out after 500 ms; -f is not a host' });
});

t.test('ping without targets is not configured', async (t) => {
  t.same(await pingAny([], 500, runner({})), { result: 'not-configured' });
  t.same(await pingAny(undefined, 500, runner({})), { result: 'not-configured' });
});

t.test('the real ping reaches the loopback address', async (t) => {
  t.same(await pingAny(['127.0.0.1'], 3000), { result: 'answered', target: '127.0.0.1' });
});

// ---------------------------------------------------------------- the witness client

/** A stand-in witness answering every request with `status` and `body` (or never, for `hang`). */
async function standIn(
  t: Tap.Test,
  status: number,
  body: string | 'hang',
): Promise<{ url: string; seen: { path: string; body: string }[] }> {
  const seen: { path: string; body: string }[] = [];
  const server = http.createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      seen.push({ path: req.url ?? '', body: text });
      if (body === 'hang') return;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(
    () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

const request = { cluster: 'demo', server: 's1', members: ['s1', 's2'] };

t.test('the witness client posts the request and reads a grant', async (t) => {
  const w = await standIn(t, 200, '{"granted":true,"holder":["s1","s2"],"expiresMs":30000}');
  t.same(await askWitness(w.url, request, 2000), { result: 'granted', holder: ['s1', 's2'], expiresMs: 30000 });
  t.same(w.seen, [{ path: '/v1/lease', body: JSON.stringify(request) }]);
});

t.test('the witness client reads a refusal with its holder', async (t) => {
  const w = await standIn(t, 409, '{"granted":false,"holder":["s3"]}');
  t.same(await askWitness(`${w.url}/tandem/`, request, 2000), { result: 'refused', holder: ['s3'] });
  t.equal(w.seen[0]?.path, '/tandem/v1/lease', 'a path prefix in the URL is kept');
});

t.test('any other answer from the witness is unavailable, with what it said', async (t) => {
  const cases: [number, string, RegExp][] = [
    [500, '{"error":"boom"}', /^the witness answered 500: boom$/],
    [200, 'not json', /^the witness answered 200 with a body that is not JSON$/],
    [200, '{"granted":false,"holder":[]}', /^the witness answered 200$/],
    [400, '{"error":"members must include the requesting server s1"}', /^the witness answered 400: members must/],
  ];
  for (const [status, body, reason] of cases) {
    const w = await standIn(t, status, body);
    const r = await askWitness(w.url, request, 2000);
    t.equal(r.result, 'unavailable', `${status} ${body}`);
    if (r.result === 'unavailable') t.match(r.reason, reason);
  }
});

t.test('a witness that does not answer in time is unavailable within the timeout', async (t) => {
  const w = await standIn(t, 200, 'hang');
  const started = Date.now();
  const r = await askWitness(w.url, request, 300);
  t.same(r, { result: 'unavailable', reason: `no answer from ${w.url} within 300 ms` });
  t.ok(Date.now() - started < 2000, 'it did not wait much longer than its timeout');
});

t.test('a witness nobody listens on, or a bad URL, is unavailable', async (t) => {
  const w = await standIn(t, 200, '{}');
  const url = w.url;
  const closed = url.replace(/:\d+$/, ':1');
  const r = await askWitness(closed, request, 2000);
  t.equal(r.result, 'unavailable');
  if (r.result === 'unavailable') t.match(r.reason, /ECONNREFUSED/);
  t.same(await askWitness('not a url', request, 2000), { result: 'unavailable', reason: 'not a url is not a URL' });
  t.same(await askWitness('ftp://127.0.0.1/', request, 2000), {
    result: 'unavailable',
    reason: 'ftp://127.0.0.1/: only http and https are supported',
  });
  t.equal(leaseUrl('http://h:29100').href, 'http://h:29100/v1/lease');
});

// ---------------------------------------------------------------- the disk lease

function sharedDir(t: Tap.Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'tnd-lease-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// A settle time of 500 ms leaves each attempt 250 ms to read and write: room for a loaded test machine.
const lease = (path: string, server: string, members: string[], over: Partial<Parameters<typeof acquireDiskLease>[0]> = {}) =>
  acquireDiskLease({ path, cluster: 'demo', server, members, ttlMs: 10_000, settleMs: 500, timeoutMs: 3000, ...over });

t.test('the first partition takes the disk lease and the file says so', async (t) => {
  const path = join(sharedDir(t), 'lease');
  const r = await lease(path, 's1', ['s1', 's2'], { now: () => 1_000 });
  t.same(r, { result: 'held', holder: ['s1', 's2'], expiresAtMs: 11_000 });
  t.same(JSON.parse(readFileSync(path, 'utf8')), { cluster: 'demo', holder: ['s1', 's2'], server: 's1', expiresAtMs: 11_000 });
});

t.test('another partition is refused while the lease is valid, and takes it once it expired', async (t) => {
  const path = join(sharedDir(t), 'lease');
  t.equal((await lease(path, 's1', ['s1'], { now: () => 1_000 })).result, 'held');
  const before = readFileSync(path, 'utf8');
  t.same(await lease(path, 's2', ['s2'], { now: () => 10_999 }), { result: 'held-by-other', holder: ['s1'], server: 's1' });
  t.equal(readFileSync(path, 'utf8'), before, 'the refused side wrote nothing');
  t.same(await lease(path, 's2', ['s2'], { now: () => 11_000 }), { result: 'held', holder: ['s2'], expiresAtMs: 21_000 });
});

t.test('the holder renews its lease, and a server of the holder partition may take it for its smaller partition', async (t) => {
  const path = join(sharedDir(t), 'lease');
  t.equal((await lease(path, 's1', ['s1', 's2'], { now: () => 1_000 })).result, 'held');
  t.same(await lease(path, 's1', ['s1', 's2'], { now: () => 5_000 }), { result: 'held', holder: ['s1', 's2'], expiresAtMs: 15_000 });
  t.same(await lease(path, 's2', ['s2'], { now: () => 6_000 }), { result: 'held', holder: ['s2'], expiresAtMs: 16_000 });
  t.same(await lease(path, 's1', ['s1'], { now: () => 7_000 }), { result: 'held-by-other', holder: ['s2'], server: 's2' });
});

t.test('a write still going on when half the settle time is over is dropped before the rename', async (t) => {
  const dir = sharedDir(t);
  const path = join(dir, 'lease');
  // The clock jumps once the temporary file holds the record: the storage was slow to write it.
  const monotonic = (): number => (readdirSync(dir).some((f) => f.endsWith('.tmp') && statSync(join(dir, f)).size > 0) ? 1e9 : 0);
  const r = await lease(path, 's1', ['s1'], { monotonic });
  t.match(r, { result: 'unavailable', reason: /dropped before the rename/ });
  t.notOk(existsSync(path), 'no lease record was written');
  t.same(readdirSync(dir), [], 'and the temporary file is gone');
});

t.test('two partitions racing for the disk lease: exactly one holds it', async (t) => {
  for (let round = 0; round < 3; round++) {
    const path = join(sharedDir(t), 'lease');
    const [a, b] = await Promise.all([lease(path, 's1', ['s1']), lease(path, 's2', ['s2'])]);
    t.same([a.result, b.result].sort(), ['held', 'held-by-other'], `round ${round}`);
  }
});

t.test('two servers of the same partition taking the disk lease at once both hold it', async (t) => {
  const path = join(sharedDir(t), 'lease');
  const [a, b] = await Promise.all([lease(path, 's1', ['s1', 's2']), lease(path, 's2', ['s1', 's2'])]);
  t.equal(a.result, 'held');
  t.equal(b.result, 'held');
});

t.test('a damaged lease file is no lease: it is replaced', async (t) => {
  const path = join(sharedDir(t), 'lease');
  writeFileSync(path, '{"half a reco');
  t.equal((await lease(path, 's1', ['s1'])).result, 'held');
  t.same(parseDiskLease('[1]'), { damaged: 'not a lease record (cluster, holder, server, expiresAtMs)' });
});

t.test('the disk lease is unavailable when the storage cannot be used or belongs to another cluster', async (t) => {
  const dir = sharedDir(t);
  const missing = await lease(join(dir, 'no-such-dir', 'lease'), 's1', ['s1']);
  t.equal(missing.result, 'unavailable');
  if (missing.result === 'unavailable') t.match(missing.reason, /^cannot write .*ENOENT/);

  const other = join(dir, 'other');
  writeFileSync(other, JSON.stringify({ cluster: 'prod', holder: ['a'], server: 'a', expiresAtMs: 0 }));
  t.same(await lease(other, 's1', ['s1']), { result: 'unavailable', reason: `${other} holds the lease of cluster prod, not demo` });
  t.match(JSON.parse(readFileSync(other, 'utf8')), { cluster: 'prod' }, 'another cluster’s file is left alone');
});

t.test('the disk lease gives up when the timeout leaves no room for the settle time', async (t) => {
  const path = join(sharedDir(t), 'lease');
  const r = await lease(path, 's1', ['s1'], { settleMs: 1000, timeoutMs: 500 });
  t.same(r, { result: 'unavailable', reason: 'no time left for the settle time of 1000 ms within 500 ms' });
});

t.test('the default disk lease TTL is three heartbeat timeouts', async (t) => {
  t.equal(defaultDiskLeaseTtlMs(2000), 6000);
});

t.test('the decision says which lease an arbiter granted and until when, for the renewal', async (t) => {
  const before = performance.now();
  const witness = await resolvePartition(
    resolveInput({ methods: ['witness'] }),
    fakeEffects({ witness: { result: 'granted', holder: ['s1', 's2'], expiresMs: 9000 } }).effects,
  );
  const after = performance.now();
  t.same(witness.lease?.holder, ['s1', 's2']);
  const until = witness.lease?.untilMs ?? 0;
  t.ok(until >= before + 9000 && until <= after + 9000, 'counted from when the witness was asked');
  const both = await resolvePartition(
    resolveInput({ methods: ['witness', 'disk'] }),
    fakeEffects({ witness: granted, disk: { result: 'held', holder: ['s1'], expiresAtMs: Date.now() + 6000 } }).effects,
  );
  const left = (both.lease?.untilMs ?? 0) - performance.now();
  t.ok(left > 5000 && left <= 6000, `the shorter lease: ${left} ms left`);
  t.same(both.lease?.holder.sort(), ['s1', 's2'], 'held for every server either arbiter named');
  const majority = await resolvePartition(resolveInput({ methods: ['majority'], heard: ['s1', 's2'] }), fakeEffects({}).effects);
  t.equal(majority.lease, undefined, 'majority grants no lease');
  const refused = await resolvePartition(
    resolveInput({ methods: ['witness'] }),
    fakeEffects({ witness: { result: 'refused', holder: ['s1'] } }).effects,
  );
  t.equal(refused.lease, undefined, 'a refused lease is no lease');
});

t.test('a renewal that cannot reach the arbiter runs on the lease it still holds, while that is safe', async (t) => {
  const lost = (checks: PartitionChecks, methods: PartitionMethod[] = ['majority', 'witness']) =>
    decidePartition({ methods, servers: S3, self: 's1', heard: ['s1', 's2'], checks });
  const base = {
    lease: { untilMs: 10_000, holder: ['s1', 's2'] },
    members: ['s1', 's2'],
    nowMs: 1_000,
    retryMs: 1000,
    attemptMs: 2000,
    deadlineMs: 500,
  };
  t.equal(
    holdOnLease({ ...base, decision: lost({ witness: witnessDown }) }),
    'witness: unavailable (connect ECONNREFUSED 10.0.0.9:29100); this side holds the lease for 9000 ms more: asking again in 1000 ms',
  );
  t.match(holdOnLease({ ...base, decision: lost({ disk: diskDown }, ['disk']) }), /^disk: unavailable \(cannot read/);
  const stands: [string, Partial<HoldOnInput>][] = [
    ['the witness refused: another side holds the lease', { decision: lost({ witness: refused }) }],
    [
      'majority lost',
      {
        decision: decidePartition({
          methods: ['majority', 'witness'],
          servers: S3,
          self: 's1',
          heard: ['s1'],
          checks: { witness: witnessDown },
        }),
      },
    ],
    ['ping found this server cut off', { decision: lost({ ping: noAnswer, witness: witnessDown }, ['ping', 'witness']) }],
    ['no lease is held', { decision: lost({ witness: witnessDown }), lease: undefined }],
    ['the lease was granted to a server now on the other side', { decision: lost({ witness: witnessDown }), members: ['s1'] }],
    ['too little of the lease is left for another attempt and the emergency', { decision: lost({ witness: witnessDown }), nowMs: 6_450 }],
    ['the decision survived', { decision: lost({ witness: granted }) }],
  ];
  for (const [name, over] of stands) t.equal(holdOnLease({ ...base, decision: lost({ witness: witnessDown }), ...over }), undefined, name);
  t.ok(holdOnLease({ ...base, decision: lost({ witness: witnessDown }), nowMs: 6_449 }), 'one millisecond more is enough');
});
