/**
 * `custom`: runs `/bin/sh -c command` in its own process group; exit 0 is healthy. When the
 * check is aborted (its timeout), the whole group is killed, so a hung script leaves nothing behind.
 */
import { spawn } from 'node:child_process';
import { signalGroup, type MonitorConfig } from '@tandem/core';
import { failed, healthy, type CheckResult, type Monitor } from './monitor.js';

const STDERR_KEEP = 300;

export function runCheckCommand(command: string, signal: AbortSignal): Promise<CheckResult> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(failed('check aborted before it started'));
    const child = spawn('/bin/sh', ['-c', command], { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      if (stderr.length < STDERR_KEEP) stderr += chunk;
    });
    const onAbort = (): void => {
      if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
    };
    signal.addEventListener('abort', onAbort, { once: true });
    let done = false;
    const finish = (result: CheckResult): void => {
      if (done) return; // 'exit' may follow 'error'
      done = true;
      signal.removeEventListener('abort', onAbort);
      // Children the script left in the background belong to the check: end them too.
      if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
      child.stderr.destroy();
      resolve(result);
    };
    child.on('error', (err) => finish(failed(`cannot run the check: ${err.message}`)));
    child.on('exit', (code, sig) => {
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
