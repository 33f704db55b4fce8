/**
 * Whether this server's previous life ended cleanly (DESIGN.md 4, the reference's "cluster
 * return"): the node manager marks its life `running` once the cluster service is online here
 * and `stopped` on an orderly stop. A life that never reached `stopped` (a power cut, a crash, an
 * emergency) makes the next start wait, isolated, for `tandem node return` — unless
 * `cluster.autoReturn` is set — so that a server that keeps failing does not keep taking groups.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '@tandem/core';

export type PreviousLife = 'none' | 'clean' | 'unclean';

export function lifePath(stateDir: string): string {
  return join(stateDir, 'nm-life.json');
}

/** How the previous life ended: `none` when there was none; a record that cannot be read counts as unclean. */
export function previousLife(stateDir: string): PreviousLife {
  let text: string;
  try {
    text = readFileSync(lifePath(stateDir), 'utf8');
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'none' : 'unclean';
  }
  try {
    return (JSON.parse(text) as { running?: unknown }).running === false ? 'clean' : 'unclean';
  } catch {
    return 'unclean';
  }
}

export function markLife(stateDir: string, running: boolean): void {
  mkdirSync(stateDir, { recursive: true });
  writeFileAtomic(lifePath(stateDir), `${JSON.stringify({ running, atMs: Date.now() })}\n`);
}
