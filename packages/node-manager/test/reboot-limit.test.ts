import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import {
  NO_REBOOTS,
  decideReboot,
  loadRebootHistory,
  rebootHistoryPath,
  saveRebootHistory,
  type RebootHistory,
} from '@tandem/node-manager';

const HOUR = 3_600_000;
const limit = { max: 3, resetAfterMs: HOUR };
const now = 10 * HOUR;

const cases: {
  name: string;
  history: RebootHistory;
  limit?: { max: number; resetAfterMs: number };
  allowed: boolean;
  after: RebootHistory;
}[] = [
  { name: 'the first shutdown ever is allowed and counted', history: NO_REBOOTS, allowed: true, after: { count: 1, lastMs: now } },
  {
    name: 'a shutdown below the maximum is allowed',
    history: { count: 2, lastMs: now - 60_000 },
    allowed: true,
    after: { count: 3, lastMs: now },
  },
  {
    name: 'the maximum reached within resetAfter refuses',
    history: { count: 3, lastMs: now - 60_000 },
    allowed: false,
    after: { count: 3, lastMs: now - 60_000 },
  },
  {
    name: 'a count above the maximum (the limit was lowered) refuses',
    history: { count: 5, lastMs: now - 1 },
    allowed: false,
    after: { count: 5, lastMs: now - 1 },
  },
  {
    name: 'resetAfter of quiet time resets the count',
    history: { count: 3, lastMs: now - HOUR },
    allowed: true,
    after: { count: 1, lastMs: now },
  },
  {
    name: 'just under resetAfter does not reset',
    history: { count: 3, lastMs: now - HOUR + 1 },
    allowed: false,
    after: { count: 3, lastMs: now - HOUR + 1 },
  },
  { name: 'max 0 never allows a shutdown', history: NO_REBOOTS, limit: { max: 0, resetAfterMs: HOUR }, allowed: false, after: NO_REBOOTS },
  {
    name: 'max 0 refuses even after a long quiet time',
    history: { count: 1, lastMs: 0 },
    limit: { max: 0, resetAfterMs: HOUR },
    allowed: false,
    after: { count: 0, lastMs: 0 },
  },
  {
    name: 'a clock that went backwards is not quiet time',
    history: { count: 3, lastMs: now + HOUR },
    allowed: false,
    after: { count: 3, lastMs: now + HOUR },
  },
  {
    name: 'max 1 allows exactly one shutdown',
    history: { count: 1, lastMs: now - 1000 },
    limit: { max: 1, resetAfterMs: HOUR },
    allowed: false,
    after: { count: 1, lastMs: now - 1000 },
  },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    const d = decideReboot(c.history, now, c.limit ?? limit);
    t.equal(d.allowed, c.allowed);
    t.same(d.history, c.after);
    t.type(d.reason, 'string');
  });
}

t.test('three failures in a row reboot three times, then the server stays up until resetAfter passes', async (t) => {
  let history = NO_REBOOTS;
  const outcomes: boolean[] = [];
  for (const at of [0, 1000, 2000, 3000, 3000 + HOUR]) {
    const d = decideReboot(history, now + at, limit);
    outcomes.push(d.allowed);
    history = d.history;
  }
  t.same(outcomes, [true, true, true, false, true]);
  t.same(history, { count: 1, lastMs: now + 3000 + HOUR });
});

t.test('the history survives in the state directory and a missing file means no shutdown yet', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tnd-rl-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = rebootHistoryPath(join(dir, 'state'));
  t.same(loadRebootHistory(path), NO_REBOOTS);
  saveRebootHistory(path, { count: 2, lastMs: 1234 });
  t.same(loadRebootHistory(path), { count: 2, lastMs: 1234 });
});

t.test('a damaged history file is an error, not a fresh start', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tnd-rl-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = rebootHistoryPath(dir);
  for (const text of ['{not json', '{"count": -1, "lastMs": 0}', 'null', '{"count": "x"}']) {
    writeFileSync(path, text);
    t.throws(() => loadRebootHistory(path), { code: 'INTERNAL', message: /damaged/ }, text);
  }
});
