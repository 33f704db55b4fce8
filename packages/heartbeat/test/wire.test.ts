import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import t from 'tap';
import { tandem } from '@tandem/protocol';
import { heartbeatKey, nextIncarnation, openHeartbeat, sealHeartbeat } from '@tandem/heartbeat';

const key = Buffer.from('s3cret');
const beat = { cluster: 'demo', server: 'node2', incarnation: 3, seq: 9, sentAtMs: 1, state: 'online', hears: ['node1'], pathIndex: 1 };

t.test('a sealed heartbeat opens with the same key and cluster', async (t) => {
  const opened = openHeartbeat(sealHeartbeat(beat, key), key, 'demo');
  t.ok(opened.ok);
  if (opened.ok) t.match(opened.heartbeat, beat);
});

t.test('datagrams that are not ours are dropped with a reason', async (t) => {
  const sealed = sealHeartbeat(beat, key);
  const tampered = tandem.v1.SignedHeartbeat.decode(sealed);
  tampered.payload = tandem.v1.Heartbeat.encode({ ...beat, seq: 10 }).finish();
  const cases: [string, Uint8Array, string][] = [
    ['garbage', Buffer.from([0xff, 0xff, 0xff, 0x01]), 'undecodable'],
    [
      'a signed payload that is not a heartbeat',
      tandem.v1.SignedHeartbeat.encode({ payload: Buffer.from([0xff, 0xff]), mac: Buffer.alloc(0) }).finish(),
      'bad-mac',
    ],
    ['another key', sealHeartbeat(beat, Buffer.from('other')), 'bad-mac'],
    ['a payload changed after signing', tandem.v1.SignedHeartbeat.encode(tampered).finish(), 'bad-mac'],
    ['a truncated mac', tandem.v1.SignedHeartbeat.encode({ payload: tampered.payload, mac: Buffer.alloc(3) }).finish(), 'bad-mac'],
    ['another cluster with the same key', sealHeartbeat({ ...beat, cluster: 'other' }, key), 'foreign-cluster'],
  ];
  for (const [name, datagram, reason] of cases) {
    const opened = openHeartbeat(datagram, key, 'demo');
    t.equal(opened.ok ? 'ok' : opened.reason, reason, name);
  }
});

t.test('the heartbeat key comes from the cluster secret', async (t) => {
  const read = (path: string): Buffer => Buffer.from(`contents of ${path}`);
  t.same(heartbeatKey('file:/etc/tandem/secret', 'demo', read), {
    key: Buffer.from('contents of /etc/tandem/secret'),
    authenticated: true,
  });
  t.same(heartbeatKey('hunter2', 'demo', read), { key: Buffer.from('hunter2'), authenticated: true });
  const derived = heartbeatKey(undefined, 'demo', read);
  t.equal(derived.authenticated, false);
  t.equal(derived.key.length, 32);
  t.notSame(heartbeatKey(undefined, 'other', read).key, derived.key, 'each cluster derives its own key');
});

t.test('the incarnation grows by one at every start and survives in the state directory', async (t) => {
  const dir = mkdtempSync('/tmp/tnd-hbi.');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.equal(nextIncarnation(`${dir}/state`), 1);
  t.equal(nextIncarnation(`${dir}/state`), 2);
  t.equal(readFileSync(`${dir}/state/incarnation`, 'utf8'), '2\n');
});
