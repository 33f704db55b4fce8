// Groups across three servers in network namespaces (DESIGN.md 5, 6.3, 6.7 and 9): the coordinator
// places the group at startup, an operator moves it from any server, and the group fails over
// when its server loses power and when one of its core daemons is killed (the guard fences that
// server first). The client reaches the application through the floating IP. A server powered on
// again runs the local recovery (RECOVER) of the group it held before it rejoins.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { APP_PORT, ROOT_ONLY, TestCluster } from './harness.mjs';
import { webGroup, web, webOnlineOn } from './web.js';
import { doubleAnswerWindows, readRecords, startProbe } from './probe.mjs';

const skip = ROOT_ONLY;

const FIP = '10.71.1.200';
const URL = `http://${FIP}:${APP_PORT}/`;

const cluster = skip
  ? undefined
  : new TestCluster({
      // mark: a sync script that notes each run's event and server role in the server's TANDEM_HOME.
      groups: `${webGroup(FIP, ['s1', 's2', 's3'])}
      - { name: mark, type: exec, start: 'echo "$TANDEM_EVENT $TANDEM_SERVER" >> "$TANDEM_HOME/script-events"', dependsOn: [vip] }`,
      monitors: '  - { name: app-alive, type: pid, target: app, interval: 500ms }',
    });
t.teardown(() => cluster?.destroy({ failed: !t.passing() }));
t.before(async () => {
  if (!cluster) return;
  const started = Date.now();
  await cluster.start();
  t.comment(`three servers online in ${Date.now() - started} ms`);
  // The client asks the floating IP every 20 ms for the whole file.
  probeFile = join(cluster.dir, 'probe.jsonl');
  const probe = startProbe(cluster.clientNs, { url: URL, out: probeFile });
  t.teardown(() => probe.stop());
});
let probeFile = '';

/** The probe's answers since `fromMs`, in the order they came. */
function answersSince(fromMs: number): { answer: string; answeredMs: number }[] {
  return (readRecords(probeFile).filter((r) => 'answer' in r && r.answeredMs >= fromMs) as { answer: string; answeredMs: number }[]).sort(
    (a, b) => a.answeredMs - b.answeredMs,
  );
}

/**
 * The server the probe reaches through the floating IP from now on. An async application is
 * online once its process runs, which may be before it listens (a Node.js start on a loaded
 * machine): the first answer within 10 s counts.
 */
async function answer(c: TestCluster): Promise<string> {
  const since = Date.now();
  let last = '';
  await c
    .waitFor('an answer through the floating IP', async () => (last = answersSince(since)[0]?.answer ?? '') !== '', 10_000)
    .catch((err: Error) => (last = `error: ${err.message}; the client's neighbours: ${c.clientNeighbours()}`));
  return last;
}

/** Which servers hold the floating IP right now (a sure sign of a double start). */
function holders(c: TestCluster, servers: string[]): string[] {
  return servers.filter((s) => c.hasAddress(s, 'ic0', FIP));
}

t.test('the coordinator starts the group on its first server, and every server sees where it runs', { skip }, async (t) => {
  const c = cluster!;
  await c.waitFor('web online on s1', async () => (await web(c, 's1'))?.state === 'online', 30_000);
  for (const s of c.servers) {
    await webOnlineOn(c, 's1', s, 15_000);
    t.match(await web(c, s), { state: 'online', server: 's1' }, `${s} shows web online on s1`);
  }
  t.equal(await answer(c), 's1', 'the client reaches s1 through the floating IP');
  t.same(holders(c, c.servers), ['s1'], 'only s1 holds the floating IP');
});

t.test('an operator on s3 moves the group to s2 and back: the coordinator orders the stop and the start', { skip }, async (t) => {
  const c = cluster!;
  // Under client load: the probe asks the floating IP every 20 ms during the moves.
  await c.waitFor('the probe to reach s1', async () => answersSince(Date.now() - 1000).some((r) => r.answer === 's1'));
  const movedAt = Date.now();
  const moved = await c.cli('s3', ['group', 'move', 'web', '--server', 's2']);
  t.equal(moved.code, 0, `tandem group move on s3 succeeds: ${moved.stdout}${moved.stderr}`);
  t.match(await web(c, 's2'), { state: 'online', server: 's2' });
  t.same(holders(c, c.servers), ['s2'], 'only s2 holds the floating IP');
  t.equal(await answer(c), 's2', 'the client reaches s2');

  const bad = await c.cli('s2', ['group', 'move', 'web', '--server', 'nowhere']);
  t.not(bad.code, 0, 'a move to a server that does not exist is refused');
  t.match(bad.stderr, /nowhere/);
  await c.waitFor('s1 to see web online on s2', async () => (await web(c, 's1'))?.state === 'online');
  t.match(await web(c, 's1'), { state: 'online', server: 's2' }, 'and nothing moved');

  const back = await c.cli('s2', ['group', 'move', 'web', '--server', 's1']);
  t.equal(back.code, 0, `moved back: ${back.stdout}${back.stderr}`);
  t.same(holders(c, c.servers), ['s1']);
  t.equal(await answer(c), 's1');
  const records = readRecords(probeFile).filter((r) => r.sentMs >= movedAt);
  t.same(doubleAnswerWindows(records), [], 'the client never got answers from two servers at once');
  const order = answersSince(movedAt)
    .map((r) => r.answer)
    .filter((a, i, all) => a !== all[i - 1]);
  t.same(order, ['s1', 's2', 's1'], 'the answers went s1, then s2, then s1 again: each move a clean handover');
  t.comment(`${records.filter((r) => 'error' in r).length} of ${records.length} requests failed during the two moves`);
});

t.test('a power cut of s1 fails the group over to s2 after the fence grace, and it is never on two servers', { skip }, async (t) => {
  const c = cluster!;
  const survivors = ['s2', 's3'];
  const decisions = (): number =>
    c
      .daemonLog('s2', 'nm')
      .split('\n')
      .filter((l) => l.includes('partition resolution: this side survives')).length;
  const decidedBefore = decisions();
  const cutAt = Date.now();
  c.powerCut('s1');
  const seen = new Set<string>();
  await c.waitFor(
    'web online on s2',
    async () => {
      const held = holders(c, survivors);
      t.ok(held.length <= 1, `at most one survivor holds the address (${held.join(', ') || 'none'})`);
      seen.add(held.join(','));
      return (await web(c, 's3'))?.state === 'online' && (await web(c, 's3'))?.server === 's2';
    },
    20_000,
  );
  t.comment(`web online on s2 ${Date.now() - cutAt} ms after the cut`);
  t.equal(await answer(c), 's2', 'the client reaches s2 through the floating IP');
  t.match(
    c
      .alerts('s2')
      .filter((a) => a.id === 'TND-RC-0107')
      .map((a) => a.message),
    [/group web fails over from s1 \(down\) to s2/],
    's2, now the coordinator, says why the group moved',
  );
  t.ok(
    c.alerts('s3').some((a) => a.id === 'TND-NM-0020' && a.message.includes('s1')),
    's3 raised that s1 is down',
  );
  // Once at the quorum lease; when s1 was declared down the servers heard were the same ones.
  t.equal(decisions() - decidedBefore, 1, 's2 decided its side of the split once');
});

t.test('s1 powered on again waits for tandem node return, then joins as a new incarnation with no groups', { skip }, async (t) => {
  const c = cluster!;
  const before = (await c.status('s2')).servers.find((s: { name: string }) => s.name === 's1')?.incarnation ?? 0;
  const { returned } = await c.powerOn('s1');
  t.ok(returned, 's1 went down without a clean stop: it stayed isolated until tandem node return');
  t.ok(
    c.alerts('s1').some((a) => a.id === 'TND-NM-0023'),
    's1 said it waits for tandem node return',
  );
  await c.waitFor('s2 to see s1 online', async () =>
    (await c.status('s2')).servers.some((s: { name: string; state: string }) => s.name === 's1' && s.state === 'online'),
  );
  const after = (await c.status('s2')).servers.find((s: { name: string }) => s.name === 's1')?.incarnation ?? 0;
  t.ok(after > before, `s1 is a new incarnation (${before} -> ${after})`);
  await c.waitFor('s1 to see web online on s2', async () => (await web(c, 's1'))?.server === 's2');
  t.match(await web(c, 's1'), { state: 'online', server: 's2' }, 'no failback without autoFailback');
  t.same(holders(c, c.servers), ['s2'], 'only s2 holds the floating IP');
  t.same(c.emergencies('s1'), [], 'a power cut is not an emergency of its own');
  t.equal(scriptEvents(c, 's1').at(-1), 'RECOVER HOME', 's1 ran the local recovery of web, which it held when the power went');
});

/** The events of the mark resource's start script on a server, oldest first. */
function scriptEvents(c: TestCluster, server: string): string[] {
  const file = join(c.dir, server, 'h', 'script-events');
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n') : [];
}

/** Where web runs, as a live server sees it. */
async function activeServer(c: TestCluster, seenFrom: string): Promise<string> {
  const g = await web(c, seenFrom);
  return g?.state === 'online' ? g.server : '';
}

// Each core daemon in turn, on whichever server runs web: the guard fences that server (its
// emergency comes before the group starts elsewhere), the next server in the policy takes web
// over, then the fenced server is powered on again for the next round.
for (const daemon of ['rc', 'nm', 'hb', 'rm', 'md']) {
  t.test(
    `kill -9 of tandem-${daemon} on the active server: it is fenced, then the next server takes the group over`,
    { skip },
    async (t) => {
      const c = cluster!;
      // web alternates between s1 and s2 (each round powers the fenced one on again): s3 watches.
      const observer = 's3';
      const active = await activeServer(c, observer);
      t.ok(active, `web runs on ${active}`);
      const next = ['s1', 's2', 's3'].find((s) => s !== active)!;
      const emergenciesBefore = c.emergencies(active).length;
      const pid = await c.daemonPid(active, daemon);
      t.ok(pid > 0, `tandem-${daemon} runs on ${active}`);
      const killedAt = Date.now();
      process.kill(pid, 'SIGKILL');
      await c.waitFor(`${active} to fence itself`, async () => c.emergencies(active).length > emergenciesBefore, 10_000);
      t.match(
        c.emergencies(active).slice(emergenciesBefore).join('\n'),
        new RegExp(`tandem-${daemon}`),
        'the emergency names the daemon that died',
      );
      await webOnlineOn(c, next, observer);
      // This round's: the guard's emergency on the active server, the start of web on the next.
      const since = (server: string, id: string): number[] =>
        c
          .alerts(server)
          .filter((a) => a.id === id && a.timeMs >= killedAt)
          .map((a) => a.timeMs);
      const [fencedMs] = since(active, 'TND-GD-0903');
      const [startedMs] = since(next, 'TND-RC-0101');
      t.ok(fencedMs !== undefined && startedMs !== undefined, `${active} raised its emergency and ${next} the start of web`);
      t.ok(fencedMs! < startedMs!, `${active} was fenced ${startedMs! - fencedMs!} ms before web started on ${next}`);
      t.same(holders(c, c.servers), [next], `only ${next} holds the floating IP`);
      t.equal(await answer(c), next, `the client reaches ${next}`);
      t.ok((await c.powerOn(active)).returned, `${active} came back through tandem node return`);
      await c.waitFor(`${active} to see web on ${next}`, async () => (await activeServer(c, active)) === next);
    },
  );
}

t.test('over the whole run the client never got answers from two servers at once', { skip }, async (t) => {
  const records = readRecords(probeFile);
  t.ok(records.length > 100, `${records.length} requests recorded`);
  t.same(doubleAnswerWindows(records), []);
});
