/** The incarnation: a counter in the state directory that grows by one at every start. */
import { mkdirSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '@tandem/core';
import { join } from 'node:path';

/** Reads the last incarnation (0 when none or unreadable), stores the next one atomically and returns it. */
export function nextIncarnation(stateDir: string): number {
  const file = join(stateDir, 'incarnation');
  let last = 0;
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    if (Number.isSafeInteger(n) && n > 0) last = n;
  } catch {
    // first start
  }
  const next = last + 1;
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  writeFileAtomic(file, `${next}\n`);
  return next;
}
