import { createSocket } from 'node:dgram';
import t, { type Test } from 'tap';
import { sleep } from '@tandem/core';
import { HeartbeatEngine, sealHeartbeat, type Change, type EngineOptions } from '@tandem/heartbeat';

const KEY = Buffer.from('engine-test-key');
const PORT_A = 39461;
const PORT_B = 39462;
const quiet = { info: () => undefined, warn: () => undefined };

async function until(what: string, ok: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function engine(
  t: Test,
  over: Partial<EngineOptions> & Pick<EngineOptions, 'server' | 'interconnects' | 'port' | 'peers'>,
): { engine: HeartbeatEngine; changes: Change[] } {
  const changes: Change[] = [];
  const e = new HeartbeatEngine({
    cluster: 'demo',
    incarnation: 1,
    intervalMs: 50,
    timeoutMs: 300,
    key: KEY,
    state: () => 'online',
    onChanges: (c) => changes.push(...c),
    log: quiet,
    ...over,
  });
  t.teardown(() => e.stop());
  return { engine: e, changes };
}

const pathState = (e: HeartbeatEngine, server: string): string =>
  e
    .view()
    .find((v) => v.name === server)
    ?.paths.map((p) => p.state)
    .join(',') ?? '';

t.test('two servers hear each other, and one marks the other down after the timeout when it stops', async (t) => {
  const a = engine(t, {
    server: 'node1',
    interconnects: ['127.0.0.1'],
    port: PORT_A,
    peers: [{ name: 'node2', interconnects: ['127.0.0.2'], port: PORT_B }],
  });
  const b = engine(t, {
    server: 'node2',
    interconnects: ['127.0.0.2'],
    port: PORT_B,
    peers: [{ name: 'node1', interconnects: ['127.0.0.1'], port: PORT_A }],
  });
  await a.engine.start();
  await b.engine.start();
  await until('both to hear each other', () => pathState(a.engine, 'node2') === 'up' && pathState(b.engine, 'node1') === 'up');
  await until('node2 to report that it hears node1', () => a.engine.view()[0]?.hears.includes('node1') === true);
  t.match(a.engine.view(), [{ name: 'node2', state: 'online', incarnation: 1, reportedState: 'online', hears: ['node1'] }]);

  b.engine.stop();
  await until('node1 to mark node2 down', () => pathState(a.engine, 'node2') === 'down');
  // The silence is counted from the last datagram node1 heard, whenever the loaded test machine ran the check.
  const lastHeardMs = a.engine.view()[0]?.paths[0]?.lastHeardMs ?? 0;
  const silentMs = Date.now() - lastHeardMs;
  t.ok(lastHeardMs > 0 && silentMs > 300, `declared down after ${silentMs} ms of silence, not before the timeout`);
  t.same(
    a.changes.map((c) => `${c.kind} ${'state' in c ? c.state : ''}`),
    ['path up', 'server online', 'path down', 'server offline'],
  );
  t.same(a.engine.drops, {
    undecodable: 0,
    'bad-mac': 0,
    'foreign-cluster': 0,
    'unknown-server': 0,
    'wrong-path': 0,
    replayed: 0,
    'stale-incarnation': 0,
  });
});

t.test('a server alone sends to itself on every interconnect, so each path is tested', async (t) => {
  const solo = engine(t, { server: 'node1', interconnects: ['127.0.0.3', '127.0.0.4'], port: PORT_A, peers: [] });
  await solo.engine.start();
  await until('both paths up', () => pathState(solo.engine, 'node1') === 'up,up');
  t.pass('both loopback paths are up');
});

t.test('forged, replayed and foreign datagrams are dropped and counted', async (t) => {
  const a = engine(t, {
    server: 'node1',
    interconnects: ['127.0.0.1'],
    port: PORT_A,
    peers: [{ name: 'node2', interconnects: ['127.0.0.2'], port: PORT_B }],
  });
  await a.engine.start();
  const sender = createSocket('udp4');
  t.teardown(() => sender.close());
  await new Promise<void>((r) => sender.bind(PORT_B, '127.0.0.2', r));
  const send = (datagram: Uint8Array): Promise<void> => new Promise((r) => sender.send(datagram, PORT_A, '127.0.0.1', () => r()));
  const beat = {
    cluster: 'demo',
    server: 'node2',
    incarnation: 4,
    seq: 10,
    sentAtMs: Date.now(),
    state: 'online',
    hears: [],
    pathIndex: 0,
  };

  await send(sealHeartbeat(beat, KEY));
  await until('node2 up', () => pathState(a.engine, 'node2') === 'up');
  await send(Buffer.from('not a heartbeat at all'));
  await send(sealHeartbeat({ ...beat, seq: 11 }, Buffer.from('wrong key')));
  await send(sealHeartbeat({ ...beat, seq: 12, cluster: 'other' }, KEY));
  await send(sealHeartbeat(beat, KEY)); // the same datagram again
  await send(sealHeartbeat({ ...beat, seq: 9 }, KEY));
  await send(sealHeartbeat({ ...beat, seq: 13, incarnation: 3 }, KEY));
  await send(sealHeartbeat({ ...beat, seq: 14, server: 'node9' }, KEY));
  await send(sealHeartbeat({ ...beat, seq: 15, pathIndex: 1 }, KEY));
  const expected = {
    undecodable: 1,
    'bad-mac': 1,
    'foreign-cluster': 1,
    'unknown-server': 1,
    'wrong-path': 1,
    replayed: 2,
    'stale-incarnation': 1,
  };
  await until('every datagram to be counted', () => Object.values(a.engine.drops).reduce((x, y) => x + y, 0) === 8);
  t.same(a.engine.drops, expected);
  t.equal(a.engine.view()[0]?.incarnation, 4, 'nothing dropped changed what node1 knows of node2');
  await send(sealHeartbeat({ ...beat, seq: 16 }, KEY));
  await until('a genuine heartbeat to be taken', () => (a.engine.view()[0]?.paths[0]?.lastHeardMs ?? 0) > beat.sentAtMs);
  t.same(a.engine.drops, expected, 'a genuine heartbeat after the bad ones is taken');
});
