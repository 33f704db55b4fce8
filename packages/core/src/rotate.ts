/** Size-based rotation for the files Tandem appends to itself (alerts, resource logs). */
import { renameSync, statSync } from 'node:fs';

/** A file Tandem appends to is rotated at this size; the previous one is kept as `<file>.1`. */
export const LOG_MAX_BYTES = 10 * 1024 * 1024;

/**
 * Renames `path` to `path.1` (replacing an older one) when it has reached `maxBytes`. Never
 * throws: two writers may rotate at once, and the loser's rename fails harmlessly.
 */
export function rotateIfLarge(path: string, maxBytes = LOG_MAX_BYTES): void {
  try {
    if (statSync(path).size >= maxBytes) renameSync(path, `${path}.1`);
  } catch {
    // no file yet, or another writer rotated it first
  }
}
