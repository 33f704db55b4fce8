// Two servers and a witness (DESIGN.md 6.2): the interconnects between them fail while both still
// reach the witness and the client. Both ask the witness; the one it grants keeps or takes the
// group, the other fences itself, and the client never sees two servers answer at once. The
// witness is then restarted (its leases are in memory): the winner runs on the lease it still
// holds meanwhile, and takes it again from the restarted witness.
import { join } from 'node:path';
import t from 'tap';
import { APP_PORT, ROOT_ONLY, TestCluster } from './harness.mjs';
import { webGroup, web, webOnlineOn } from './web.js';
import { doubleAnswerWindows, handover, readRecords, startProbe } from './probe.mjs';

const skip = ROOT_ONLY;

const FIP = '10.71.1.202';
const WITNESS_PORT = 39100;

const cluster = skip
  ? undefined
  : new TestCluster({
      servers: 2,
      // The client namespace is the witness's host: both servers reach it on their first interconnect's bridge.
      networkPartition: `{ method: [witness], witness: "http://10.71.1.100:${WITNESS_PORT}" }`,
      groups: webGroup(FIP, ['s1', 's2']),
      monitors: '  []',
    });
t.teardown(() => cluster?.destroy({ failed: !t.passing() }));

t.test('an interconnect-only split between two servers: the witness picks one side, the other fences itself', { skip }, async (t) => {
  const c = cluster!;
  await c.start();
  const url = await c.startWitness(WITNESS_PORT);
  t.equal(url, `http://10.71.1.100:${WITNESS_PORT}`);
  await webOnlineOn(c, 's1', 's2', 30_000);
  const probeFile = join(c.dir, 'probe.jsonl');
  const probe = startProbe(c.clientNs, { url: `http://${FIP}:${APP_PORT}/`, out: probeFile });
  t.teardown(() => probe.stop());
  await c.waitFor('the client to reach s1', async () => readRecords(probeFile).some((r) => 'answer' in r && r.answer === 's1'));

  const cutAt = Date.now();
  c.isolate('s1', ['s2']);
  await c.waitFor('one server to fence itself', async () => c.emergencies('s1').length + c.emergencies('s2').length > 0, 15_000);
  const loser = c.emergencies('s1').length > 0 ? 's1' : 's2';
  const winner = loser === 's1' ? 's2' : 's1';
  t.match(
    c.emergencies(loser).join('\n'),
    /lost network partition resolution: witness: lease held by/,
    `${loser} lost: ${c.emergencies(loser)[0]}`,
  );
  await webOnlineOn(c, winner, winner);
  t.pass(`${winner} won; web online on it ${Date.now() - cutAt} ms after the cut`);
  await c.waitFor(`the client to reach ${winner}`, async () =>
    readRecords(probeFile).some((r) => 'answer' in r && r.answer === winner && r.answeredMs > Date.now() - 1000),
  );
  t.same(c.emergencies(winner), [], `${winner} did not fence itself`);
  t.match(c.witnessLog, /lease granted to/, 'the witness granted the lease');
  t.match(c.witnessLog, /lease refused to/, 'and refused the other side');
  // While the loser stays silent, the winner renews its lease (every third of the witness's 10 s).
  await c.waitFor(`${winner} to renew its lease`, async () => c.witnessLog.includes(`lease renewed by ${winner}`), 10_000);
  t.pass(`${winner} renewed the lease while ${loser} stayed silent`);

  // The witness restarted for maintenance: a renewal finds it gone, and the winner keeps running on its lease.
  await c.stopWitness();
  const stoppedAt = Date.now();
  await c.waitFor(`${winner} to find the witness gone`, async () => c.alerts(winner).some((a) => a.id === 'TND-NM-0025'), 10_000);
  const gone = c.alerts(winner).find((a) => a.id === 'TND-NM-0025');
  t.match(
    gone?.message,
    /witness: unavailable .*; this side holds the lease for \d+ ms more: asking again/,
    `${winner} says so: ${gone?.message}`,
  );
  await c.startWitness(WITNESS_PORT);
  await c.waitFor(`${winner} to take the lease again`, async () => c.witnessLog.includes(`lease granted to ${winner}`), 10_000);
  t.pass(`the lease is ${winner}'s again ${Date.now() - stoppedAt} ms after the witness stopped`);
  t.same(c.emergencies(winner), [], `${winner} kept running through the witness outage`);
  t.match(await web(c, winner), { state: 'online', server: winner }, 'and so did web');
  const records = readRecords(probeFile);
  t.same(doubleAnswerWindows(records), [], 'never two servers at once');
  if (loser === 's1') {
    t.ok(
      handover(records, { from: 's1', to: 's2', sinceMs: cutAt }).clean,
      'the holder lost: its answers ended before the winner answered',
    );
  } else {
    const answered = new Set(records.flatMap((r) => ('answer' in r && r.answeredMs >= cutAt ? [r.answer] : [])));
    t.same([...answered], ['s1'], 'the holder won: the client reached s1 only');
  }
});
