/**
 * The ping check of partition resolution: can this server still reach any of the configured
 * targets (its own network)? Every target is tried at once with `ping -c 1 -W <s>`; never throws.
 */
import { runCommand, type CommandResult } from '@tandem/core';
import type { PingOutcome } from './decide.js';

export type CommandRunner = (file: string, args: string[], opts: { timeoutMs?: number; signal?: AbortSignal }) => Promise<CommandResult>;

/** Resolves as soon as one target answers, or when all have failed; within `timeoutMs`. */
export async function pingAny(
  targets: readonly string[] | undefined,
  timeoutMs: number,
  run: CommandRunner = runCommand,
): Promise<PingOutcome> {
  if (!targets || targets.length === 0) return { result: 'not-configured' };
  // ping's -W is whole seconds; the runner's timeout holds the real bound.
  const waitS = String(Math.max(1, Math.floor(timeoutMs / 1000)));
  const abort = new AbortController();
  const failures: string[] = [];
  try {
    const answered = await Promise.any(
      targets.map(async (target) => {
        // A target is a host, never an option for ping.
        if (target.startsWith('-')) throw new Error(`${target} is not a host`);
        const r = await run('ping', ['-c', '1', '-W', waitS, target], { timeoutMs, signal: abort.signal });
        if (r.code !== 0) throw new Error(`${target}: ${r.failure}`);
        return target;
      }),
    ).catch((err: AggregateError) => {
      for (const e of err.errors) failures.push((e as Error).message);
      return undefined;
    });
    if (answered !== undefined) return { result: 'answered', target: answered };
    return { result: 'none', targets: [...targets], reason: failures.join('; ') };
  } finally {
    abort.abort(); // the pings still running are no longer needed
  }
}
