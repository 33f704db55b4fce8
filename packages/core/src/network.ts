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
 * of time, or whose signal aborts, is killed with SIGKILL. `onOutput` sees its standard output as
 * it comes (say, to know that the tool has begun its work).
 */
export function runCommand(
  file: string,
  args: string[],
  opts: { timeoutMs?: number; signal?: AbortSignal; onOutput?: (chunk: string) => void } = {},
): Promise<CommandResult> {
  const { timeoutMs, signal, onOutput } = opts;
  if (timeoutMs !== undefined && timeoutMs <= 0)
    return Promise.resolve({ code: null, stdout: '', failure: 'no time left before the timeout' });
  if (signal?.aborted) return Promise.resolve({ code: null, stdout: '', failure: 'aborted before it started' });
  return new Promise((resolve) => {
    try {
      const child = execFile(
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
      if (onOutput) child.stdout?.on('data', (chunk: string) => onOutput(chunk));
    } catch (err) {
      // spawn can throw at once (ENOMEM, EINVAL): a failure like any other, never a rejection
      resolve({ code: null, stdout: '', failure: `${file} could not be started: ${(err as Error).message}` });
    }
  });
}

/** The IPv4 addresses (with prefix) on an interface, from `ip -4 -o addr show dev IF`. */
export function parseAddresses(ipOutput: string): string[] {
  return [...ipOutput.matchAll(/\binet (\d+\.\d+\.\d+\.\d+\/\d+)/g)].map((m) => m[1] as string);
}

const hostOf = (address: string): string => address.split('/')[0] as string;

/**
 * How `address` (with or without its prefix) is on an interface: the address with the prefix it
 * actually carries (the same IP under another prefix is the same IP), `absent`, or why nobody can tell.
 */
export async function findAddress(
  address: string,
  iface: string,
  opts: { timeoutMs?: number; signal?: AbortSignal },
): Promise<{ found: string } | { absent: true } | { failure: string }> {
  const shown = await runCommand('ip', ['-4', '-o', 'addr', 'show', 'dev', iface], opts);
  if (shown.code !== 0) return { failure: shown.failure };
  const found = parseAddresses(shown.stdout).find((a) => hostOf(a) === hostOf(address));
  return found ? { found } : { absent: true };
}

/**
 * Removes an address from an interface within `timeoutMs` in all; an address that is not there
 * counts as removed. One `ip addr del` as recorded first (the emergency has little time); if that
 * fails, the address is looked up, so that it is deleted with the prefix it actually carries.
 */
export async function removeAddress(address: string, iface: string, timeoutMs: number): Promise<{ ok: boolean; detail: string }> {
  const deadline = Date.now() + timeoutMs;
  if (address.includes('/')) {
    const direct = await runCommand('ip', ['-4', 'addr', 'del', address, 'dev', iface], { timeoutMs });
    if (direct.code === 0) return { ok: true, detail: `removed ${address} from ${iface}` };
  }
  const before = await findAddress(address, iface, { timeoutMs: Math.max(1, deadline - Date.now()) });
  if ('absent' in before) return { ok: true, detail: `${address} was not on ${iface}` };
  if ('failure' in before) return { ok: false, detail: `cannot remove ${address} from ${iface}: ${before.failure}` };
  const del = await runCommand('ip', ['-4', 'addr', 'del', before.found, 'dev', iface], { timeoutMs: deadline - Date.now() });
  if (del.code === 0) return { ok: true, detail: `removed ${before.found} from ${iface}` };
  return { ok: false, detail: `cannot remove ${before.found} from ${iface}: ${del.failure}` };
}
