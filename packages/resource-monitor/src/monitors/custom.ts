/**
 * `custom`: runs `/bin/sh -c command` in its own process group; exit 0 is healthy. When the
 * check is aborted (its timeout), the whole group is killed, so a hung script leaves nothing behind.
 */
import { spawn } from 'node:child_process';
import { signalGroup, type MonitorConfig } from '@tandem/core';
import { failed, healthy, type CheckResult, type Monitor } from './monitor.js';

/** stderr kept for the message: its tail, where a script says why it failed */
const STDERR_KEEP = 1000;

export function runCheckCommand(command: string, signal: AbortSignal): Promise<CheckResult> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(failed('check aborted before it started'));
    const child = spawn('/bin/sh', ['-c', command], { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-STDERR_KEEP);
    });
    const killGroup = (): void => {
      if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
    };
    const onAbort = (): void => {
      killGroup();
      // A process that left the group may still hold stderr open: stop waiting for it.
      child.stderr.destroy();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    let done = false;
    const finish = (result: CheckResult): void => {
      if (done) return; // 'close' may follow 'error'
      done = true;
      signal.removeEventListener('abort', onAbort);
      resolve(result);
    };
    child.on('error', (err) => {
      killGroup();
      finish(failed(`cannot run the check: ${err.message}`));
    });
    // Children the script left in the background belong to the check: end them at its exit, which
    // also closes the stderr they inherited, so 'close' follows.
    child.on('exit', killGroup);
    // 'close', not 'exit': only then has all of stderr been read.
    child.on('close', (code, sig) => {
      const said = stderr.trim().split('\n').pop() ?? '';
      if (signal.aborted) finish(failed('check killed at its timeout'));
      else if (code === 0) finish(healthy('exit 0'));
      else finish(failed(`${sig ? `killed by ${sig}` : `exit ${code}`}${said ? `: ${said.slice(0, 200)}` : ''}`));
    });
  });
}

export function customMonitor(config: MonitorConfig): Monitor {
  const command = config.command ?? '';
  return { check: (signal) => runCheckCommand(command, signal) };
}
