/**
 * How `tandem` fails: one line on stderr and an exit code a script can test. Usage errors are 2,
 * a node manager that is not running 3, a timeout 4, every other error 1. No stack traces.
 */
import { TandemError } from '@tandem/core';

export const EXIT = { OK: 0, ERROR: 1, USAGE: 2, UNAVAILABLE: 3, TIMEOUT: 4 } as const;

/** A mistake in the command line found after yargs parsed it (for example a resource without its group). */
export class UsageError extends Error {
  override name = 'UsageError';
}

export function exitCodeFor(err: unknown): number {
  if (err instanceof UsageError) return EXIT.USAGE;
  if (err instanceof TandemError) {
    if (err.code === 'UNAVAILABLE') return EXIT.UNAVAILABLE;
    if (err.code === 'TIMEOUT') return EXIT.TIMEOUT;
  }
  return EXIT.ERROR;
}

/** The one line an operator reads: `tandem: group shop cannot move to node2: node2 is offline`. */
export function errorLine(err: unknown): string {
  const text = err instanceof TandemError ? err.toLine() : err instanceof Error ? err.message : String(err);
  return `tandem: ${text.split('\n')[0]}`;
}
