import t from 'tap';
import { guardWasLate, judge, type DaemonWatch, type Observation } from '@tandem/guard';

const running: DaemonWatch = { daemon: 'rc', pid: 4242, lastBeatMs: 10_000, stallLimitMs: 1000, state: 'running' };
const now = 10_500;
const alive: Observation = { nowMs: now, alive: true, registered: true };

const cases: [string, DaemonWatch | undefined, Observation, string | undefined][] = [
  ['an alive daemon that beats recently is fine', running, alive, undefined],
  [
    'a dead registered daemon without goodbye exited unexpectedly',
    running,
    { ...alive, alive: false },
    'TND-GD-0901 tandem-rc exited unexpectedly (pid 4242)',
  ],
  ['a dead daemon that said goodbye is a planned stop', { ...running, state: 'stopped' }, { ...alive, alive: false }, undefined],
  ['a dead daemon that removed its registration stopped as planned', running, { nowMs: now, alive: false, registered: false }, undefined],
  // With a 1000 ms limit a daemon beats every 200 ms: it is late once 200 ms have passed without a beat.
  [
    'a daemon late with its beat for longer than its stall limit stalled',
    running,
    { ...alive, nowMs: 11_201 },
    'TND-GD-0902 tandem-rc stalled for 1001 ms (limit 1000 ms, pid 4242)',
  ],
  ['a daemon late for exactly its stall limit is not yet stalled', running, { ...alive, nowMs: 11_200 }, undefined],
  ['a daemon silent for its stall limit, but late for less, is not stalled', running, { ...alive, nowMs: 11_001 }, undefined],
  ['a silent daemon that said goodbye is not stalled', { ...running, state: 'stopped' }, { ...alive, nowMs: 20_000 }, undefined],
  [
    'a dead and silent daemon is reported as exited, not stalled',
    running,
    { nowMs: 20_000, alive: false, registered: true },
    'TND-GD-0901 tandem-rc exited unexpectedly (pid 4242)',
  ],
  ['an unknown daemon is never a crash', undefined, { ...alive, alive: false }, undefined],
];

t.test('the crash decision', async (t) => {
  for (const [name, watch, seen, expected] of cases) {
    const v = judge(watch, seen);
    t.equal(v.crashed ? `${v.alert} ${v.reason}` : undefined, expected, name);
  }
});

t.test('a check that runs far later than its interval means the guard itself was frozen', async (t) => {
  t.equal(guardWasLate(1000, 1050, 50, 200), false, 'on time');
  t.equal(guardWasLate(1000, 1250, 50, 200), false, 'within the tolerance');
  t.equal(guardWasLate(1000, 1251, 50, 200), true, 'beyond the tolerance');
});
