/**
 * Floating IP addresses with iproute2. Shared by the fip resource driver and the guard, which
 * removes addresses in an emergency from the activation ledger.
 */
import { execFile } from 'node:child_process';

export interface CommandResult {
  /** exit code, null when the command did not run to its end */
  code: number | null;
  stdout: string;
  /** why it did not succeed, one line; '' when it did */
  failure: string;
}

/**
 * Runs a system tool (ip, arping, ping) without a shell; never rejects. A command that runs out
 * of time, or whose signal aborts, is killed with SIGKILL.
 */
export function runCommand(file: string, args: string[], opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<CommandResult> {
  const { timeoutMs, signal } = opts;
  if (timeoutMs !== undefined && timeoutMs <= 0)
    return Promise.resolve({ code: null, stdout: '', failure: 'no time left before the timeout' });
  if (signal?.aborted) return Promise.resolve({ code: null, stdout: '', failure: 'aborted before it started' });
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      {
        killSignal: 'SIGKILL',
        encoding: 'utf8',
        ...(timeoutMs !== undefined ? { timeout: timeoutMs } : {}),
        ...(signal ? { signal } : {}),
      },
      (err, stdout, stderr) => {
        if (!err) return resolve({ code: 0, stdout, failure: '' });
        const e = err as NodeJS.ErrnoException & { code?: string | number; killed?: boolean };
        const said = (stderr.trim() || stdout.trim()).split('\n').pop() ?? '';
        if (e.code === 'ENOENT') resolve({ code: null, stdout, failure: `${file} not found` });
        else if (signal?.aborted) resolve({ code: null, stdout, failure: `${file} aborted` });
        else if (e.killed) resolve({ code: null, stdout, failure: `${file} timed out after ${timeoutMs} ms` });
        else if (typeof e.code === 'number') resolve({ code: e.code, stdout, failure: said || `${file} exited with code ${e.code}` });
        else resolve({ code: null, stdout, failure: e.message });
      },
    );
  });
}

/** The IPv4 addresses (with prefix) on an interface, from `ip -4 -o addr show dev IF`. */
export function parseAddresses(ipOutput: string): string[] {
  return [...ipOutput.matchAll(/\binet (\d+\.\d+\.\d+\.\d+\/\d+)/g)].map((m) => m[1] as string);
}

/** Removes an address from an interface; an address that is not there counts as removed. */
export async function removeAddress(address: string, iface: string, timeoutMs: number): Promise<{ ok: boolean; detail: string }> {
  const del = await runCommand('ip', ['-4', 'addr', 'del', address, 'dev', iface], { timeoutMs });
  if (del.code === 0) return { ok: true, detail: `removed ${address} from ${iface}` };
  const show = await runCommand('ip', ['-4', '-o', 'addr', 'show', 'dev', iface], { timeoutMs });
  if (show.code === 0 && !parseAddresses(show.stdout).includes(address)) return { ok: true, detail: `${address} was not on ${iface}` };
  return { ok: false, detail: `cannot remove ${address} from ${iface}: ${del.failure}` };
}
