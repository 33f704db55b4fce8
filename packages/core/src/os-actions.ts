/**
 * The operating-system actions of final actions and the emergency procedure. Command lines are
 * pure data (tested); running them is one function. TANDEM_OS_ACTIONS=dry-run makes every OS
 * action a logged no-op, for test harnesses and demos on a workstation.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';

export type OsAction = 'shutdown' | 'reboot' | 'reset' | 'panic' | 'poweroff';

export type OsStep = { kind: 'exec'; argv: string[] } | { kind: 'sysrq'; key: 'b' | 'c' | 'o' };

/** What each action does: orderly ones run systemctl; immediate ones write /proc/sysrq-trigger. */
export function osActionSteps(action: OsAction): OsStep {
  switch (action) {
    case 'shutdown':
      return { kind: 'exec', argv: ['systemctl', 'poweroff'] };
    case 'reboot':
      return { kind: 'exec', argv: ['systemctl', 'reboot'] };
    case 'reset':
      return { kind: 'sysrq', key: 'b' };
    case 'panic':
      return { kind: 'sysrq', key: 'c' };
    case 'poweroff':
      return { kind: 'sysrq', key: 'o' };
  }
}

export function osActionsDryRun(env: NodeJS.ProcessEnv = process.env): boolean {
  return env['TANDEM_OS_ACTIONS'] === 'dry-run';
}

/** Runs an OS action; returns a description of what was (or, in dry-run, would have been) done. */
export function runOsAction(action: OsAction, env: NodeJS.ProcessEnv = process.env): string {
  const step = osActionSteps(action);
  const text = step.kind === 'exec' ? step.argv.join(' ') : `echo ${step.key} > /proc/sysrq-trigger`;
  if (osActionsDryRun(env)) return `dry-run: ${text}`;
  if (step.kind === 'sysrq') {
    writeFileSync('/proc/sys/kernel/sysrq', '1');
    writeFileSync('/proc/sysrq-trigger', step.key);
  } else {
    // A missing command (no systemd) is an 'error' event, never an exception that kills the caller;
    // the caller escalates (shutdown and reboot fall back to reset when the machine stays up).
    const child = spawn(step.argv[0] as string, step.argv.slice(1), { stdio: 'ignore', detached: true });
    child.on('error', () => undefined);
    child.unref();
  }
  return text;
}
