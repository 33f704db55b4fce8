// A one-way loss between two servers (DESIGN.md 6.2, docs/partition.md): s1 no longer hears s2,
// while s2 still hears s1, and no third server hears both. s1 decides at the quorum lease, s2 an
// interval later (from s1's heartbeats, which say how long s1 has not heard it), and the side
// without the first server, s2, fences itself before s1 takes its group over. The client
// probe asks the floating IP every 20 ms; no two servers may ever answer for it.
import { join } from 'node:path';
import t from 'tap';
import { APP_PORT, ROOT_ONLY, TestCluster } from './harness.mjs';
import { webGroup, webOnlineOn } from './web.js';
import { doubleAnswerWindows, handover, readRecords, startProbe } from './probe.mjs';

const skip = ROOT_ONLY;

const FIP = '10.71.1.204';
const TIMEOUT_MS = 2000;

// web prefers s2: the server that loses holds the group when the loss begins.
const cluster = skip
  ? undefined
  : new TestCluster({ servers: 2, heartbeatTimeout: `${TIMEOUT_MS}ms`, groups: webGroup(FIP, ['s2', 's1']), monitors: '  []' });
t.teardown(() => cluster?.destroy({ failed: !t.passing() }));

t.test('s2 still hears s1, s1 no longer hears s2: s2 fences itself, then s1 takes the group over', { skip }, async (t) => {
  const c = cluster!;
  await c.start();
  await webOnlineOn(c, 's2', 's1', 30_000);
  const probeFile = join(c.dir, 'probe.jsonl');
  const probe = startProbe(c.clientNs, { url: `http://${FIP}:${APP_PORT}/`, out: probeFile });
  t.teardown(() => probe.stop());
  await c.waitFor('the client to reach s2', async () => readRecords(probeFile).some((r) => 'answer' in r && r.answer === 's2'));

  const cutAt = Date.now();
  c.cutOneWay('s2', 's1');
  t.teardown(() => c.mendOneWay('s2', 's1'));
  await c.waitFor('s2 to fence itself', async () => c.emergencies('s2').length > 0, 3 * TIMEOUT_MS);
  const fencedAfter = Date.now() - cutAt;
  t.match(
    c.emergencies('s2').join('\n'),
    /lost network partition resolution: majority: tie/,
    `s2, which still heard s1, says why: ${c.emergencies('s2')[0]}`,
  );
  t.ok(
    c.alerts('s2').some((a) => a.id === 'TND-NM-0021'),
    's2 raised that it fences itself',
  );
  await webOnlineOn(c, 's1', 's1');
  t.pass(`s2 fenced within ${fencedAfter} ms, web online on s1 ${Date.now() - cutAt} ms after the cut`);
  t.same(c.emergencies('s1'), [], 's1 keeps running');
  await c.waitFor('the client to reach s1', async () =>
    readRecords(probeFile).some((r) => 'answer' in r && r.answer === 's1' && r.answeredMs > Date.now() - 1000),
  );
  const records = readRecords(probeFile);
  t.same(doubleAnswerWindows(records), [], 'never two servers at once');
  const h = handover(records, { from: 's2', to: 's1', sinceMs: cutAt });
  t.comment(`s2's last answer ${Math.round(h.lastFromMs ?? NaN)} ms, s1's first ${Math.round(h.firstToMs ?? NaN)} ms after the cut`);
  t.ok(h.clean, 'every answer of s2 came before the first of s1');
});
