import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import * as zmq from 'zeromq';
import {
  AlertLog,
  EventPublisher,
  Ledger,
  createLogger,
  resolvePaths,
  sleep,
  validateConfigText,
  type Config,
  type DaemonContext,
} from '@tandem/core';
import {
  Membership,
  MembershipTable,
  NodeManager,
  checkMembership,
  curvePublicKeyOf,
  nodeManagerEndpoints,
  z85Decode,
  z85Encode,
  type LocalMembership,
  type MembershipHost,
} from '@tandem/node-manager';
import { PROTOCOL_REVISION, decodeReply, encodeRequest, errorCodeFromWire, v1 } from '@tandem/protocol';

// Each server binds the same port on its own loopback addresses, as real servers do on their
// interconnects. A new port for every test: zeromq closes sockets in the background, so the
// previous test's port may still be bound when the next one starts.
let port = 41700 + (process.pid % 200) * 10;
t.beforeEach(() => {
  port += 1;
});
const ADDRESS: Record<string, string> = { node1: '127.0.0.2', node2: '127.0.0.3' };
const INTERVAL_MS = 100;

async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

type KeyPair = { publicKey: string; secretKey: string };
const keyPair = (): KeyPair => zmq.curveKeyPair() as KeyPair;

/** `interconnects`: each server's addresses, by default its one address of ADDRESS. */
function configText(keys: Record<string, KeyPair | undefined>, interconnects: Record<string, string[]> = {}): string {
  const servers = Object.keys(ADDRESS)
    .map((name) => {
      const key = keys[name] ? `, publicKey: "${keys[name].publicKey}"` : '';
      return `  - { name: ${name}, interconnects: [${(interconnects[name] ?? [ADDRESS[name]]).join(', ')}]${key} }`;
    })
    .join('\n');
  return `
cluster: { name: demo, nodeManagerPort: ${port}, heartbeat: { interval: ${INTERVAL_MS}ms, timeout: 600ms }, emergency: { action: exec, command: "true" } }
servers:
${servers}
`;
}

function parse(text: string): Config {
  const v = validateConfigText(text);
  if (!v.ok) throw new Error(v.problems.join('\n'));
  return v.config;
}

/** A server's home with its configuration and, unless told otherwise, its secret key in the state directory. */
function host(t: Tap.Test, server: string, config: Config, secretKey?: string): MembershipHost {
  const home = mkdtempSync(join(tmpdir(), 'tnd-mb-'));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  const paths = resolvePaths({ TANDEM_HOME: home, TANDEM_CONFIG: join(home, 'cluster.yaml') });
  if (secretKey) {
    mkdirSync(paths.state, { recursive: true });
    writeFileSync(paths.curveSecretKey, `${secretKey}\n`, { mode: 0o600 });
  }
  return { config, server, paths, log: createLogger({ daemon: 'nm', server, logsDir: paths.logs, console: false }) };
}

async function open(t: Tap.Test, h: MembershipHost, local: LocalMembership): Promise<Membership> {
  const m = await Membership.open(h, async () => local);
  t.teardown(() => m.close());
  return m;
}

/** A raw CURVE client of node1's link, with any key pair, as an intruder or a misconfigured peer would be. */
function rawClient(t: Tap.Test, serverKey: string, own: KeyPair): zmq.Dealer {
  const dealer = new zmq.Dealer({ linger: 0, curveServerKey: serverKey, curvePublicKey: own.publicKey, curveSecretKey: own.secretKey });
  dealer.connect(`tcp://${ADDRESS['node1']}:${port}`);
  t.teardown(() => dealer.close());
  return dealer;
}

const membershipRequest = (m: Partial<v1.Membership>): Uint8Array =>
  encodeRequest({ id: 'raw', revision: PROTOCOL_REVISION, origin: 'test', deadlineMs: Date.now() + 5000, membership: m });

t.test('Z85 round-trips CURVE keys and the public key is derived from the secret one', async (t) => {
  for (let i = 0; i < 5; i++) {
    const pair = keyPair();
    t.equal(z85Decode(pair.publicKey)?.length, 32);
    t.equal(z85Encode(z85Decode(pair.secretKey)!), pair.secretKey);
    t.equal(curvePublicKeyOf(pair.secretKey), pair.publicKey, `pair ${i}`);
  }
  t.equal(z85Encode(Buffer.from([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b])), 'HelloWorld', 'the example of RFC 32');
  for (const bad of ['short', 'Hello"orld', '%%%%%']) t.equal(curvePublicKeyOf(bad), undefined, `"${bad}" is not a key`);
});

t.test('a membership from another cluster, an unknown server or this server itself is refused', async (t) => {
  const config = parse(configText({}));
  const cases: [Partial<v1.Membership>, string | undefined][] = [
    [{ cluster: 'demo', server: 'node2' }, undefined],
    [{ cluster: 'other', server: 'node2' }, 'membership from cluster other refused: this is cluster demo'],
    [{ cluster: 'demo', server: 'node9' }, 'membership from node9 refused: no such server in cluster demo'],
    [{ cluster: 'demo', server: '' }, 'membership from "" refused: no such server in cluster demo'],
    [{ cluster: 'demo', server: 'node1' }, 'membership from node1 refused: that is this server'],
  ];
  for (const [m, refusal] of cases) {
    const check = (): void => checkMembership(v1.Membership.create(m), config, 'node1');
    if (refusal) t.throws(check, { code: 'REFUSED', message: refusal });
    else t.doesNotThrow(check, `${m.server} of ${m.cluster} is accepted`);
  }
});

t.test('a peer is unknown for a heartbeat timeout after the start, then reachable only while it answers', async (t) => {
  const table = new MembershipTable([{ server: 'node2', addresses: ['10.0.0.2', '10.1.0.2'] }], 1000, 600);
  t.equal(table.reachOf('node2', 1500), 'unknown');
  t.equal(table.reachOf('node2', 1601), 'unreachable');
  table.record(
    v1.Membership.create({
      cluster: 'demo',
      server: 'node2',
      incarnation: 3,
      state: 'online',
      hears: ['node1', 'node3'],
      lost: [{ server: 'node3', silentMs: 1500 }],
    }),
    2000,
  );
  t.equal(table.reachOf('node2', 2600), 'reachable');
  t.equal(table.reachOf('node2', 2601), 'unreachable');
  table.record(v1.Membership.create({ cluster: 'demo', server: 'node2', incarnation: 2, state: 'starting' }), 3000);
  t.same(
    table.views(3000)[0]?.reported,
    {
      incarnation: 3,
      state: 'online',
      hears: ['node1', 'node3'],
      lost: [{ server: 'node3', silentMs: 1500 }],
      configGeneration: 0,
      sentAtMs: 0,
      groups: [],
      down: [],
      startupDone: false,
    },
    'an older incarnation is ignored',
  );
  t.equal(table.views(3000)[0]?.reach, 'unreachable');
  table.record(v1.Membership.create({ cluster: 'demo', server: 'node2', incarnation: 4, state: 'starting' }), 3000);
  t.equal(table.views(3000)[0]?.reported?.incarnation, 4, 'a new incarnation replaces the old one');
  t.same(
    table.views(3000)[0]?.paths.map((p) => p.answering),
    [false, false],
    "a peer's request says nothing of this server's paths to it",
  );
  table.record(v1.Membership.create({ cluster: 'demo', server: 'node2', incarnation: 4, state: 'online' }), 3100, 1);
  t.same(table.views(3700)[0]?.paths, [
    { address: '10.0.0.2', answering: false, lastAnsweredMs: 0 },
    { address: '10.1.0.2', answering: true, lastAnsweredMs: 3100 },
  ]);
  t.equal(table.views(3700)[0]?.reach, 'reachable', 'an answer on any path is enough');
  t.equal(table.views(3701)[0]?.paths[1]?.answering, false, 'a path answers within the heartbeat timeout or not at all');
});

t.test('two node managers exchange membership both ways over CURVE, and a silent peer becomes unreachable', async (t) => {
  const keys = { node1: keyPair(), node2: keyPair() };
  const config = parse(configText(keys));
  const one = await open(t, host(t, 'node1', config, keys.node1.secretKey), { incarnation: 11, state: 'online', hears: ['node2'] });
  const two = await open(t, host(t, 'node2', config, keys.node2.secretKey), { incarnation: 22, state: 'starting', hears: [] });
  // Each answered on its own path: a peer's request alone would make it reachable already.
  await until(
    'both to answer each other',
    () => one.peers()[0]?.paths[0]?.answering === true && two.peers()[0]?.paths[0]?.answering === true,
  );
  t.match(one.peers(), [
    {
      server: 'node2',
      reach: 'reachable',
      reported: { incarnation: 22, state: 'starting', hears: [] },
      paths: [{ address: '127.0.0.3', answering: true }],
    },
  ]);
  t.match(two.peers(), [{ server: 'node1', reach: 'reachable', reported: { incarnation: 11, state: 'online', hears: ['node2'] } }]);
  t.equal(one.refusedConnections, 0);
  t.equal(two.refusedConnections, 0);

  two.close();
  await until('node1 to see node2 unreachable', () => one.peers()[0]?.reach === 'unreachable', 3000);
  t.pass('node2 is unreachable for node1 after the heartbeat timeout');
});

t.test('a node manager that answers before its heartbeat told it the incarnation stays readable when it learns it', async (t) => {
  const keys = { node1: keyPair(), node2: keyPair() };
  const config = parse(configText(keys));
  // node2's heartbeat is slow to answer: its first view comes only when released.
  let release: () => void = () => undefined;
  const late = new Promise<void>((resolve) => (release = resolve));
  const one = await open(t, host(t, 'node1', config, keys.node1.secretKey), { incarnation: 5, state: 'online', hears: ['node2'] });
  const two = await Membership.open(host(t, 'node2', config, keys.node2.secretKey), async () => {
    await late;
    return { incarnation: 3, state: 'online', hears: ['node1'] };
  });
  t.teardown(() => two.close());
  // node1 asks; node2 answers from what it has before its own first exchange.
  await until('node1 to hear node2 answer', () => one.peers()[0]?.reported !== undefined);
  t.match(
    one.peers()[0]?.reported,
    { incarnation: 0, state: 'starting' },
    'before its heartbeat answers, node2 says its incarnation is not known',
  );
  release();
  await until('node1 to see node2 online', () => one.peers()[0]?.reported?.state === 'online');
  t.match(
    one.peers()[0],
    { reach: 'reachable', reported: { incarnation: 3, state: 'online', hears: ['node1'] } },
    'the incarnation it learns is accepted',
  );
});

t.test('the link follows the interconnects: with interconnect 0 dead both ways the peers reach each other on interconnect 1', async (t) => {
  const keys = { node1: keyPair(), node2: keyPair() };
  // Interconnect 0 is cut: each server's configuration gives the other an interconnect 0 address
  // on which nothing listens (127.0.0.5, 127.0.0.3), while interconnect 1 (127.0.1.x) works.
  const seenBy1 = parse(configText(keys, { node1: ['127.0.0.2', '127.0.1.2'], node2: ['127.0.0.3', '127.0.1.3'] }));
  const seenBy2 = parse(configText(keys, { node1: ['127.0.0.5', '127.0.1.2'], node2: ['127.0.0.6', '127.0.1.3'] }));
  const one = await open(t, host(t, 'node1', seenBy1, keys.node1.secretKey), { incarnation: 1, state: 'online', hears: ['node2'] });
  const two = await open(t, host(t, 'node2', seenBy2, keys.node2.secretKey), { incarnation: 2, state: 'online', hears: ['node1'] });
  await until(
    'both to be answered on interconnect 1',
    () => one.peers()[0]?.paths[1]?.answering === true && two.peers()[0]?.paths[1]?.answering === true,
  );
  t.match(one.peers(), [
    {
      server: 'node2',
      reach: 'reachable',
      reported: { incarnation: 2 },
      paths: [
        { address: '127.0.0.3', answering: false, lastAnsweredMs: 0 },
        { address: '127.0.1.3', answering: true },
      ],
    },
  ]);
  t.match(two.peers(), [
    {
      server: 'node1',
      reach: 'reachable',
      paths: [
        { address: '127.0.0.5', answering: false, lastAnsweredMs: 0 },
        { address: '127.0.1.2', answering: true },
      ],
    },
  ]);
});

t.test('a peer that starts seconds after this one, or restarts, answers on its path within about two heartbeat intervals', async (t) => {
  const keys = { node1: keyPair(), node2: keyPair() };
  const config = parse(configText(keys));
  const one = await open(t, host(t, 'node1', config, keys.node1.secretKey), { incarnation: 1, state: 'online', hears: [] });
  const answeredSince = (since: number): boolean => (one.peers()[0]?.paths[0]?.lastAnsweredMs ?? 0) >= since;
  // node1 has been trying node2 for a while (its reconnect interval grown) when node2 starts or comes back.
  const startAfterMs = 2500;
  let two: Membership | undefined;
  t.teardown(() => two?.close());
  for (const what of ['the late start', 'restart 1', 'restart 2']) {
    await sleep(startAfterMs);
    t.equal(one.peers()[0]?.reach, 'unreachable', `node2 is unreachable before ${what}`);
    two = await Membership.open(host(t, 'node2', config, keys.node2.secretKey), async () => ({
      incarnation: Date.now(),
      state: 'online',
      hears: [],
    }));
    const started = Date.now();
    await until(`node2 to answer node1 after ${what}`, () => answeredSince(started), 5000);
    const tookMs = Date.now() - started;
    // Two intervals, and one more for the scheduling of a loaded test machine.
    t.ok(tookMs <= 3 * INTERVAL_MS, `node2 answered ${tookMs} ms after ${what} (at most ${3 * INTERVAL_MS} ms)`);
    await until(`node1 to answer node2 after ${what}`, () => (two?.peers()[0]?.paths[0]?.lastAnsweredMs ?? 0) >= started, 3 * INTERVAL_MS);
    two.close();
  }
});

t.test('a path whose CURVE handshake the peer refused once is connected again when the peer admits this server', async (t) => {
  const keys = { node1: keyPair(), node2: keyPair() };
  const config = parse(configText(keys));
  // node2 first runs with a configuration that still lists an old key of node1: it refuses node1.
  const stale = parse(configText({ ...keys, node1: keyPair() }));
  const one = await open(t, host(t, 'node1', config, keys.node1.secretKey), { incarnation: 1, state: 'online', hears: [] });
  const refusing = await Membership.open(host(t, 'node2', stale, keys.node2.secretKey), async () => ({
    incarnation: 2,
    state: 'online',
    hears: [],
  }));
  await until("node2's ZAP handler to refuse node1", () => refusing.refusedConnections > 0);
  refusing.close();
  // libzmq does not reconnect a DEALER whose handshake was refused: without a new one, node1 would never be answered again.
  const two = await open(t, host(t, 'node2', config, keys.node2.secretKey), { incarnation: 3, state: 'online', hears: [] });
  const started = Date.now();
  await until('node2 to answer node1', () => (one.peers()[0]?.paths[0]?.lastAnsweredMs ?? 0) >= started, 3000);
  t.match(one.peers()[0], { reach: 'reachable', reported: { incarnation: 3 }, paths: [{ answering: true }] });
  t.equal(two.refusedConnections, 0);
});

t.test('a client whose key is not listed gets no answer and the refusal is counted', async (t) => {
  const keys = { node1: keyPair(), node2: keyPair() };
  const config = parse(configText(keys));
  const one = await open(t, host(t, 'node1', config, keys.node1.secretKey), { incarnation: 1, state: 'online', hears: [] });
  const intruder = rawClient(t, keys.node1.publicKey, keyPair());
  intruder.receiveTimeout = 1000;
  await intruder.send(membershipRequest({ cluster: 'demo', server: 'node2' }));
  // Without the ZAP handler CURVE would admit any client that knows node1's public key, and this would be answered.
  await t.rejects(intruder.receive(), { code: 'EAGAIN' }, 'no reply reaches the intruder');
  await until('the ZAP handler to count the refusal', () => one.refusedConnections > 0);
  t.same(one.peers()[0]?.reported, undefined, 'nothing from the intruder was recorded');
});

t.test('a listed key claiming another cluster or an unknown server gets REFUSED', async (t) => {
  const keys = { node1: keyPair(), node2: keyPair() };
  const config = parse(configText(keys));
  const one = await open(t, host(t, 'node1', config, keys.node1.secretKey), { incarnation: 1, state: 'online', hears: [] });
  const peer = rawClient(t, keys.node1.publicKey, keys.node2);
  peer.receiveTimeout = 5000;
  for (const [m, message] of [
    [{ cluster: 'other', server: 'node2' }, 'membership from cluster other refused: this is cluster demo'],
    [{ cluster: 'demo', server: 'node7' }, 'membership from node7 refused: no such server in cluster demo'],
  ] as const) {
    await peer.send(membershipRequest(m));
    const [frame] = await peer.receive();
    const reply = decodeReply(frame!);
    t.ok(reply.ok);
    if (!reply.ok) continue;
    t.equal(reply.message.error ? errorCodeFromWire(reply.message.error.code) : 'no error', 'REFUSED');
    t.equal(reply.message.error?.message, message);
  }
  await peer.send(membershipRequest({ cluster: 'demo', server: 'node2', incarnation: 5, state: 'online' }));
  const [frame] = await peer.receive();
  const reply = decodeReply(frame!);
  t.match(
    reply.ok && reply.message.membership,
    { cluster: 'demo', server: 'node1', incarnation: 1, state: 'online' },
    "a peer gets node1's view",
  );
  t.equal(one.peers()[0]?.reported?.incarnation, 5, 'and its own view is recorded');
  t.equal(one.refusedConnections, 0);
});

t.test('a missing, exposed, mismatched or unlisted key stops the start with an error that says what to do', async (t) => {
  const keys = { node1: keyPair(), node2: keyPair() };
  const config = parse(configText(keys));
  const missing = host(t, 'node1', config);
  const path = missing.paths.curveSecretKey;
  await t.rejects(
    Membership.open(missing, async () => ({ incarnation: 1, state: 'starting', hears: [] })),
    {
      code: 'NOT_FOUND',
      message: `CURVE secret key ${path} is missing: run tandem keys generate on node1`,
    },
  );
  const other = keyPair();
  const wrong = host(t, 'node1', config, other.secretKey);
  await t.rejects(
    Membership.open(wrong, async () => ({ incarnation: 1, state: 'starting', hears: [] })),
    {
      code: 'CONFLICT',
      message: new RegExp(
        `^CURVE secret key \\S+ does not match node1's publicKey in the configuration \\(the key file's public key is ${other.publicKey.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)`,
      ),
    },
  );
  const exposed = host(t, 'node1', config, keys.node1.secretKey);
  chmodSync(exposed.paths.curveSecretKey, 0o644);
  await t.rejects(
    Membership.open(exposed, async () => ({ incarnation: 1, state: 'starting', hears: [] })),
    {
      code: 'REFUSED',
      message: `CURVE secret key ${exposed.paths.curveSecretKey} is readable by others (mode 644): chmod 600 ${exposed.paths.curveSecretKey}`,
    },
  );
  const unlisted = host(t, 'node1', parse(configText({ node2: keys.node2 })), keys.node1.secretKey);
  await t.rejects(
    Membership.open(unlisted, async () => ({ incarnation: 1, state: 'starting', hears: [] })),
    {
      code: 'NOT_FOUND',
      message: /^server node1 has no publicKey in the configuration: run tandem keys generate on node1/,
    },
  );
  const peerUnlisted = host(t, 'node1', parse(configText({ node1: keys.node1 })), keys.node1.secretKey);
  await t.rejects(
    Membership.open(peerUnlisted, async () => ({ incarnation: 1, state: 'starting', hears: [] })),
    {
      message: /^server node2 has no publicKey in the configuration/,
    },
  );
  t.same(nodeManagerEndpoints(missing, 'node2'), [`tcp://127.0.0.3:${port}`]);
});

/** A node manager context on a server's home (no daemons around it: only membership is used). */
function nmContext(t: Tap.Test, h: MembershipHost): DaemonContext {
  const events = new EventPublisher(h.server, 'nm');
  t.teardown(() => events.close());
  return {
    ...h,
    name: 'nm',
    configPath: h.paths.config,
    alerts: new AlertLog(h.paths.alerts, h.server, 'nm'),
    events,
    ledger: new Ledger(h.paths.ledger),
    startedMs: Date.now(),
  };
}

t.test('the node manager opens the link only with several servers, and status shows what the peer node manager reports', async (t) => {
  const keys = { node1: keyPair(), node2: keyPair() };
  const config = parse(configText(keys));
  const alone = nmContext(t, host(t, 'node1', { ...config, servers: config.servers.slice(0, 1) }));
  const single = new NodeManager(alone);
  t.teardown(() => single.stop('test over'));
  await single.openMembership();
  t.same(single.peers(), [], 'one server: no key needed, no link');

  const first = new NodeManager(nmContext(t, host(t, 'node1', config, keys.node1.secretKey)));
  t.teardown(() => first.stop('test over'));
  await first.openMembership();
  const two = await open(t, host(t, 'node2', config, keys.node2.secretKey), { incarnation: 42, state: 'online', hears: ['node1'] });
  await until('node1 to hear node2', () => first.peers()[0]?.reach === 'reachable');
  t.match(first.peers()[0]?.reported, { incarnation: 42, state: 'online', hears: ['node1'] });
  // No hb here: node1 says it hears nobody and that its incarnation is not known yet (0).
  await until('node2 to hear node1', () => two.peers()[0]?.reported !== undefined);
  t.match(two.peers()[0]?.reported, { incarnation: 0, state: 'starting', hears: [] });
  const status = await first.status();
  t.match(
    status.servers?.find((s) => s.name === 'node2'),
    { state: 'unknown', incarnation: 42, reach: 'reachable', reportedState: 'online', hears: ['node1'] },
  );

  const broken = new NodeManager(nmContext(t, host(t, 'node1', config)));
  t.teardown(() => broken.stop('test over'));
  await t.rejects(broken.openMembership(), { code: 'NOT_FOUND', message: /is missing: run tandem keys generate on node1$/ });
});

t.test('a peer whose incarnation becomes known after it first reported 0 stays reachable', async (t) => {
  const table = new MembershipTable([{ server: 'node2', addresses: ['10.0.0.2'] }], 0, 1000);
  const m = (incarnation: number) => v1.Membership.create({ cluster: 'c', server: 'node2', incarnation, state: 'online' });
  table.record(m(0), 100, 0);
  table.record(m(3), 600, 0);
  table.record(m(0), 1200, 0); // a report before its heartbeat answered it, arriving late
  t.equal(table.views(1500)[0]?.reach, 'reachable');
  t.equal(table.views(1500)[0]?.reported?.incarnation, 3, 'a late 0 does not forget the incarnation');
  table.record(m(2), 1600, 0); // from an older life: ignored
  t.equal(table.views(2300)[0]?.reach, 'unreachable', 'an older incarnation does not count as hearing the peer');
});
