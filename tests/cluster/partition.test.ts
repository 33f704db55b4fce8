// Frozen servers and network splits (DESIGN.md 6.1, 6.2, 6.7 and 9) on three servers with the
// majority method: a whole server frozen for twice the heartbeat timeout is replaced, and fences
// itself when it wakes; a server cut off from the others on every interconnect (the client still
// reaches it) loses partition resolution and fences itself before the others take its group; once
// the split heals it comes back as a new incarnation without groups; a split that is not a clique
// (s1 and s2 lose each other, s3 still hears both) costs s2, the later server, its place, and its
// group moves to s1. A client probe asks the floating IP every 20 ms throughout, and no two
// servers may ever answer for it.
import { join } from 'node:path';
import t from 'tap';
import { APP_PORT, ROOT_ONLY, TestCluster } from './harness.mjs';
import { webGroup, web, webOnlineOn } from './web.js';
import { doubleAnswerWindows, handover, readRecords, startProbe } from './probe.mjs';

const skip = ROOT_ONLY;

const FIP = '10.71.1.201';
const TIMEOUT_MS = 2000;

const cluster = skip
  ? undefined
  : new TestCluster({
      heartbeatTimeout: `${TIMEOUT_MS}ms`,
      groups: webGroup(FIP, ['s1', 's2', 's3']),
      monitors: '  []',
    });
t.teardown(() => cluster?.destroy({ failed: !t.passing() }));

let probeFile = '';
t.before(async () => {
  if (!cluster) return;
  await cluster.start();
  await cluster.waitFor('web online on s1', async () => (await web(cluster, 's1'))?.state === 'online', 30_000);
  probeFile = join(cluster.dir, 'probe.jsonl');
  const probe = startProbe(cluster.clientNs, { url: `http://${FIP}:${APP_PORT}/`, out: probeFile });
  t.teardown(() => probe.stop());
});

/** Whether the client saw the address go from `from` to `to` cleanly since `fromMs`. */
function handedOver(from: string, to: string, fromMs: number): boolean {
  const h = handover(readRecords(probeFile), { from, to, sinceMs: fromMs });
  t.comment(
    `${from}'s last answer ${h.lastFromMs === undefined ? 'none' : `${Math.round(h.lastFromMs)} ms`}, ${to}'s first ${Math.round(h.firstToMs ?? NaN)} ms after the fault`,
  );
  return h.clean;
}

/** Answers from the probe since `fromMs`, by server. */
function answersSince(fromMs: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of readRecords(probeFile)) {
    if ('answer' in r && r.answeredMs >= fromMs) out[r.answer] = (out[r.answer] ?? 0) + 1;
  }
  return out;
}

t.test('s1 frozen for twice the heartbeat timeout: s2 fails the group over once s1, waking, has fenced itself', { skip }, async (t) => {
  const c = cluster!;
  await c.waitFor('the client to reach s1', async () => (answersSince(Date.now() - 1000)['s1'] ?? 0) > 0);
  const frozenAt = Date.now();
  c.freeze('s1');
  t.teardown(() => c.thaw('s1'));
  // A frozen server's kernel still answers ARP for the floating IP: the failover start on s2 waits.
  // (s2 declares s1 down after the timeout; on a loaded machine, and through the CLI's status
  // calls, it may be seen later: s1 stays frozen until it is, and for twice the timeout at least.)
  await c.waitFor('s2 to start web', async () => (await web(c, 's2'))?.state === 'starting', 5 * TIMEOUT_MS);
  t.comment(`s2 seen starting web ${Date.now() - frozenAt} ms after s1 froze`);
  const wait = frozenAt + 2 * TIMEOUT_MS - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  t.match(await web(c, 's2'), { state: 'starting', server: 's2' }, 'after twice the timeout (or more) s2 is still waiting for the address');
  t.same(
    ['s1', 's2', 's3'].filter((s) => c.hasAddress(s, 'ic0', FIP)),
    ['s1'],
    'the address is on the frozen s1 only',
  );
  c.thaw('s1');
  const thawedAt = Date.now();
  await c.waitFor('s1 to fence itself', async () => c.emergencies('s1').length > 0, 10_000);
  // Whichever notices first: a daemon or the guard finds its own timers late (a stall), or a peer says it declared s1 down.
  t.match(c.emergencies('s1').join('\n'), /stalled|declared this server down|exited/, `s1's emergency says why: ${c.emergencies('s1')[0]}`);
  await webOnlineOn(c, 's2', 's3');
  t.pass(`web online on s2 ${Date.now() - thawedAt} ms after s1 woke`);
  await c.waitFor('the client to reach s2', async () => (answersSince(Date.now() - 1000)['s2'] ?? 0) > 0, 10_000);
  // s1, awake and still holding the address until it fences, may answer; s2 only after that.
  t.same(doubleAnswerWindows(readRecords(probeFile)), [], 'never two servers at once');
  t.ok(handedOver('s1', 's2', frozenAt), 'every answer of s1 came before the first of s2');
});

t.test('s2 cut off from s1 and s3 on every interconnect: it fences itself, then s1 takes the group over', { skip }, async (t) => {
  const c = cluster!;
  await c.powerOn('s1');
  await webOnlineOn(c, 's2', 's1');
  const cutAt = Date.now();
  c.isolate('s2', ['s1', 's3']);
  await c.waitFor('s2 to fence itself', async () => c.emergencies('s2').length > 0, 3 * TIMEOUT_MS);
  const fencedAfter = Date.now() - cutAt;
  t.match(c.emergencies('s2').join('\n'), /lost network partition resolution: majority/, `s2 says why: ${c.emergencies('s2')[0]}`);
  await webOnlineOn(c, 's1', 's3');
  t.pass(`s2 fenced within ${fencedAfter} ms, web online on s1 ${Date.now() - cutAt} ms after the cut`);
  t.ok(
    c.alerts('s3').some((a) => a.id === 'TND-NM-0020' && a.message.includes('s2')),
    's3 saw s2 go down',
  );
  await c.waitFor('the client to reach s1', async () => (answersSince(Date.now() - 1000)['s1'] ?? 0) > 0, 10_000);
  t.same(doubleAnswerWindows(readRecords(probeFile)), [], 'never two servers at once');
  // s2 may answer until it fences (the client still reaches it); s1 only after that.
  t.ok(handedOver('s2', 's1', cutAt), 'every answer of s2 came before the first of s1');
});

t.test('the split heals: s2 comes back as a new incarnation without its group, which stays on s1', { skip }, async (t) => {
  const c = cluster!;
  c.heal('s2', ['s1', 's3']);
  await c.powerOn('s2');
  await c.waitFor('s1 to see s2 online', async () =>
    (await c.status('s1')).servers.some((s: { name: string; state: string }) => s.name === 's2' && s.state === 'online'),
  );
  await webOnlineOn(c, 's1', 's2');
  t.match(await web(c, 's2'), { state: 'online', server: 's1' }, 's2 shows web on s1');
  t.notOk(c.hasAddress('s2', 'ic0', FIP), 's2 does not hold the floating IP');
  t.ok(c.hasAddress('s1', 'ic0', FIP), 's1 does');
  const since = Date.now();
  await new Promise((r) => setTimeout(r, 1000));
  t.same(Object.keys(answersSince(since)), ['s1'], 'the client reaches s1 only');
});

t.test(
  's1 and s2 lose each other while s3 hears both: s3 declares s2 down, s2 fences itself, and its group moves to s1',
  { skip },
  async (t) => {
    const c = cluster!;
    const moved = await c.cli('s3', ['group', 'move', 'web', '--server', 's2']);
    t.equal(moved.code, 0, `web moved to s2: ${moved.stdout}${moved.stderr}`);
    await webOnlineOn(c, 's2', 's1');
    await c.waitFor('the client to reach s2', async () => (answersSince(Date.now() - 1000)['s2'] ?? 0) > 0, 10_000);
    // Each of s1 and s2 still counts a majority with s3: partition resolution alone keeps both.
    // Earlier scenarios fenced s1 and s2 already: only what this one adds counts.
    const earlier = Object.fromEntries(['s1', 's2', 's3'].map((s) => [s, c.emergencies(s).length]));
    const since = (s: string): string[] => c.emergencies(s).slice(earlier[s]);
    const cutAt = Date.now();
    c.isolate('s2', ['s1']);
    t.teardown(() => c.heal('s2', ['s1']));
    await c.waitFor('s2 to fence itself', async () => since('s2').length > 0, 3 * TIMEOUT_MS);
    const fencedAfter = Date.now() - cutAt;
    t.match(since('s2').join('\n'), /s3 declared this server down/, `s2 says why: ${since('s2')[0]}`);
    const split = c.alerts('s3').find((a) => a.id === 'TND-NM-0024');
    t.match(
      split?.message,
      /s1 and s2 no longer hear each other .* s2, the later in configuration order, is declared down/,
      `s3 says why: ${split?.message}`,
    );
    t.same([...since('s1'), ...since('s3')], [], 's1 and s3 keep running');
    await webOnlineOn(c, 's1', 's3');
    t.pass(`s2 fenced within ${fencedAfter} ms, web online on s1 ${Date.now() - cutAt} ms after the cut`);
    await c.waitFor('the client to reach s1', async () => (answersSince(Date.now() - 1000)['s1'] ?? 0) > 0, 10_000);
    t.same(doubleAnswerWindows(readRecords(probeFile)), [], 'never two servers at once');
    t.ok(handedOver('s2', 's1', cutAt), 'every answer of s2 came before the first of s1');
  },
);
