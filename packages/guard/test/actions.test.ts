import t from 'tap';
import { isAlive, osActionSteps, osActionsDryRun, runOsAction } from '@tandem/core';
import { emergencyEnv, planAction, runEmergencyCommand } from '@tandem/guard';

t.test('each OS action has its command line', async (t) => {
  t.same(osActionSteps('shutdown'), { kind: 'exec', argv: ['systemctl', 'poweroff'] });
  t.same(osActionSteps('reboot'), { kind: 'exec', argv: ['systemctl', 'reboot'] });
  t.same(osActionSteps('reset'), { kind: 'sysrq', key: 'b' });
  t.same(osActionSteps('panic'), { kind: 'sysrq', key: 'c' });
  t.same(osActionSteps('poweroff'), { kind: 'sysrq', key: 'o' });
});

t.test('with TANDEM_OS_ACTIONS=dry-run an OS action only says what it would do', async (t) => {
  const env = { TANDEM_OS_ACTIONS: 'dry-run' };
  t.equal(osActionsDryRun(env), true);
  t.equal(osActionsDryRun({}), false);
  // Were any of these performed, this test process (and machine) would not be here to check.
  t.equal(runOsAction('reset', env), 'dry-run: echo b > /proc/sysrq-trigger');
  t.equal(runOsAction('panic', env), 'dry-run: echo c > /proc/sysrq-trigger');
  t.equal(runOsAction('poweroff', env), 'dry-run: echo o > /proc/sysrq-trigger');
  t.equal(runOsAction('shutdown', env), 'dry-run: systemctl poweroff');
  t.equal(runOsAction('reboot', env), 'dry-run: systemctl reboot');
});

t.test('each emergency action maps to a plan; orderly OS actions escalate to reset', async (t) => {
  t.same(planAction('exec', 'echo x'), { kind: 'exec', command: 'echo x' });
  t.same(planAction('stop-services', undefined), { kind: 'none' });
  t.same(planAction('shutdown', undefined), { kind: 'os', action: 'shutdown', escalateTo: 'reset' });
  t.same(planAction('reboot', undefined), { kind: 'os', action: 'reboot', escalateTo: 'reset' });
  t.same(planAction('reset', undefined), { kind: 'os', action: 'reset' });
  t.same(planAction('panic', undefined), { kind: 'os', action: 'panic' });
  t.same(planAction('poweroff', undefined), { kind: 'os', action: 'poweroff' });
});

t.test('the emergency command sees the reason and the server name', async (t) => {
  const env = emergencyEnv({ PATH: process.env['PATH'] ?? '/usr/bin:/bin' }, 'tandem-rc exited unexpectedly', 'node1');
  t.equal(env['TANDEM_EMERGENCY_REASON'], 'tandem-rc exited unexpectedly');
  t.equal(env['TANDEM_SERVER_NAME'], 'node1');
  const out = await runEmergencyCommand('echo "$TANDEM_SERVER_NAME: $TANDEM_EMERGENCY_REASON" >&2; exit 3', env);
  t.equal(
    out,
    'command "echo "$TANDEM_SERVER_NAME: $TANDEM_EMERGENCY_REASON" >&2; exit 3" exited with 3: node1: tandem-rc exited unexpectedly',
  );
});

t.test('an emergency command that hangs is killed at its timeout', async (t) => {
  const out = await runEmergencyCommand('sleep 30', { PATH: process.env['PATH'] ?? '/usr/bin:/bin' }, 200);
  t.equal(out, 'command "sleep 30" timed out after 200 ms and was killed');
});

const PATH_ONLY = { PATH: process.env['PATH'] ?? '/usr/bin:/bin' };

t.test('the outcome holds what was written to stderr after the shell exited, until stderr closed', async (t) => {
  // A subshell writes once the shell has exited and been reaped, which is when 'exit' fires:
  // an outcome taken at 'exit' would miss the line; taken at 'close' it is complete.
  const out = await runEmergencyCommand('p=$$; (while kill -0 "$p" 2>/dev/null; do :; done; echo late line >&2) & exit 5', PATH_ONLY);
  t.match(out, /exited with 5: late line$/);
});

t.test('a command that leaves a process holding its stderr is reported when it exits, not at the timeout', async (t) => {
  const started = Date.now();
  const out = await runEmergencyCommand('sleep 30 >&2 & echo "$!" >&2; exit 0', PATH_ONLY, 10_000);
  const pid = Number(/exited with 0: (\d+)$/.exec(out)?.[1]);
  t.teardown(() => {
    if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  });
  t.match(out, /^command ".*" exited with 0: \d+$/);
  t.ok(Date.now() - started < 5000, 'it did not wait for the background process');
  t.ok(isAlive(pid), 'the background process was left alone');
});
