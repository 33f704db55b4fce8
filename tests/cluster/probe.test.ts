// The failover probe (tests/cluster/probe.mjs): the analysis of its records, table-driven, and
// the program against a local HTTP server. Neither needs root.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { analyseFailover, doubleAnswerWindows, firstAnswerFromOther, handover, parseRecords, readRecords } from './probe.mjs';

/** An answer from `answer` at `answeredMs`, sent 2 ms before. */
const a = (answeredMs: number, answer: string) => ({ seq: 0, sentMs: answeredMs - 2, answeredMs, answer });
/** A failed request sent at `sentMs`. */
const e = (sentMs: number) => ({ seq: 0, sentMs, endedMs: sentMs + 150, error: 'timeout' });

t.test('the first answer after the cut from another server is the failover', async (t) => {
  const cases = [
    { name: 'no answer from another server', records: [a(900, 's1'), e(1000), e(1020)], expect: undefined },
    { name: 'only the cut server, before the cut', records: [a(980, 's1'), a(1000, 's1')], expect: undefined },
    { name: 'another server answers after the cut', records: [a(980, 's1'), e(1000), a(1650, 's2'), a(1670, 's2')], expect: 650 },
    { name: 'records out of order', records: [a(1700, 's3'), a(1650, 's2'), e(1000)], expect: 650 },
    { name: 'another server before the cut does not count', records: [a(500, 's2'), e(1000), a(1800, 's2')], expect: 800 },
  ];
  for (const c of cases) {
    const first = firstAnswerFromOther(c.records, { cutServer: 's1', cutMs: 1000 });
    t.equal(first ? first.answeredMs - 1000 : undefined, c.expect, c.name);
  }
  t.match(analyseFailover([a(980, 's1'), e(1000), e(1020), a(1650, 's2')], { cutServer: 's1', cutMs: 1000 }), {
    failoverMs: 650,
    newServer: 's2',
    windows: [],
    failedAfterCut: 2,
    sentAfterCut: 3,
  });
  t.match(analyseFailover([a(980, 's1'), e(1000)], { cutServer: 's1', cutMs: 1000 }), { failoverMs: undefined, newServer: undefined });
});

t.test('double answer windows: two servers within a tick, or the cut server after the cut', async (t) => {
  const opts = { cutServer: 's1', cutDoneMs: 1000, tickMs: 20 };
  const cases = [
    { name: 'a clean failover has none', records: [a(960, 's1'), a(980, 's1'), a(1600, 's2'), a(1620, 's2')], expect: [] },
    {
      name: 'two servers 5 ms apart',
      records: [a(1600, 's2'), a(1605, 's3'), a(1700, 's2')],
      expect: [{ fromMs: 1600, toMs: 1605, servers: ['s2', 's3'] }],
    },
    {
      name: 'a pair across a tick boundary is found all the same',
      records: [a(1619, 's2'), a(1621, 's3')],
      expect: [{ fromMs: 1619, toMs: 1621, servers: ['s2', 's3'] }],
    },
    { name: 'two servers a tick or more apart are not a double answer', records: [a(1600, 's2'), a(1620, 's3')], expect: [] },
    {
      name: 'flapping between two servers is one window',
      records: [a(1600, 's2'), a(1610, 's3'), a(1620, 's2'), a(1630, 's3'), a(1800, 's3')],
      expect: [{ fromMs: 1600, toMs: 1630, servers: ['s2', 's3'] }],
    },
    {
      name: 'the cut server answering after the cut is done',
      records: [a(999, 's1'), a(1040, 's1'), a(1060, 's1'), a(1600, 's2')],
      expect: [{ fromMs: 1040, toMs: 1060, servers: ['s1'], reason: 'the cut server answered after the cut' }],
    },
    {
      name: 'separate windows stay separate',
      records: [a(1040, 's1'), a(1600, 's2'), a(1610, 's3')],
      expect: [
        { fromMs: 1040, toMs: 1040, servers: ['s1'] },
        { fromMs: 1600, toMs: 1610, servers: ['s2', 's3'] },
      ],
    },
    { name: 'failures are not answers', records: [a(1600, 's2'), e(1601), a(1700, 's2')], expect: [] },
  ];
  for (const c of cases) {
    const windows = doubleAnswerWindows(c.records, opts);
    t.match(windows, c.expect, c.name);
    t.equal(windows.length, c.expect.length, `${c.name}: ${c.expect.length} window(s)`);
  }
});

t.test('records are read from JSON lines, skipping a half-written last line', async (t) => {
  t.same(parseRecords('{"seq":0,"sentMs":1,"answeredMs":2,"answer":"s1"}\n{"seq":1,"sentMs":21,"end'), [
    { seq: 0, sentMs: 1, answeredMs: 2, answer: 's1' },
  ]);
  t.same(readRecords('/nonexistent/probe.jsonl'), []);
});

t.test('the probe records answers every tick and failures once the server is gone, and ends on SIGTERM', async (t) => {
  const dir = mkdtempSync('/tmp/tnd-probe.');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const server = createServer((_req, res) => res.end('s9\n'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const { port } = server.address() as AddressInfo;
  const out = join(dir, 'probe.jsonl');
  const child = spawn(process.execPath, [
    join(import.meta.dirname, 'probe.mjs'),
    '--url',
    `http://127.0.0.1:${port}/`,
    '--out',
    out,
    '--interval',
    '20',
  ]);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const waitFor = async (what: string, cond: () => boolean) => {
    const deadline = Date.now() + 10_000;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  await waitFor('10 answers', () => readRecords(out).filter((r) => 'answer' in r).length >= 10);
  server.close();
  server.closeAllConnections();
  // The requests in flight at the close may end as resets or timeouts; the next ones are refused.
  await waitFor('a refused request', () => readRecords(out).some((r) => 'error' in r && r.error === 'ECONNREFUSED'));
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'SIGTERM ends the probe cleanly');
  const records = readRecords(out);
  const answers = records.filter((r) => 'answer' in r);
  t.ok(
    answers.every((r) => r.answer === 's9' && r.answeredMs >= r.sentMs),
    'every answer holds the server name',
  );
  // A request in flight when the server closed may be reset or time out (a loaded machine); after it, refused.
  const errors = records.filter((r) => 'error' in r).map((r) => r.error);
  t.ok(
    errors.every((e) => ['ECONNREFUSED', 'ECONNRESET', 'timeout'].includes(e)),
    `failures are refusals, resets or timeouts (${[...new Set(errors)].join(', ')})`,
  );
  t.ok(errors.includes('ECONNREFUSED'), 'a closed port is a refused connection');
  const seqs = records.map((r) => r.seq).sort((x, y) => x - y);
  t.same(
    seqs,
    seqs.map((_, i) => i),
    'every request sent has exactly one record',
  );
  const sent = records.map((r) => r.sentMs).sort((x, y) => x - y);
  const gaps = sent.slice(1).map((s, i) => s - (sent[i] ?? 0));
  t.comment(`median gap between requests: ${gaps.sort((x, y) => x - y)[Math.floor(gaps.length / 2)]?.toFixed(1)} ms`);
});

t.test('handover: every answer of the old server before the first of the new one, counted from the fault', async (t) => {
  const clean = [a(900, 's1'), a(1010, 's1'), a(1200, 's2'), a(1220, 's2')];
  t.same(handover(clean, { from: 's1', to: 's2', sinceMs: 1000 }), { clean: true, lastFromMs: 10, firstToMs: 200 });
  const overlapping = [...clean, a(1300, 's1')];
  t.match(handover(overlapping, { from: 's1', to: 's2', sinceMs: 1000 }), { clean: false, lastFromMs: 300 }, 's1 answered after s2');
  t.same(
    handover([a(1010, 's1')], { from: 's1', to: 's2', sinceMs: 1000 }),
    { clean: false, lastFromMs: 10, firstToMs: undefined },
    's2 never answered',
  );
  t.same(
    handover([a(1200, 's2')], { from: 's1', to: 's2', sinceMs: 1000 }),
    { clean: true, lastFromMs: undefined, firstToMs: 200 },
    's1 silent since the fault',
  );
  t.same(doubleAnswerWindows([a(1000, 's1'), a(1010, 's2')]).length, 1, 'without a cut server, two servers within a tick still count');
});
