/** Writing the small state files Tandem keeps (ledger, registry, counters) so a reader never sees half of one. */
import { chmodSync, renameSync, rmSync, writeFileSync } from 'node:fs';

/**
 * Writes `text` to `path` through a fresh temporary file and a rename: a crash mid-write leaves the
 * old file, and with `mode` the content never sits in a file with wider permissions.
 */
export function writeFileAtomic(path: string, text: string, mode?: number): void {
  const tmp = `${path}.tmp`;
  rmSync(tmp, { force: true });
  writeFileSync(tmp, text, { flag: 'wx', ...(mode !== undefined ? { mode } : {}) });
  // The umask narrows a new file's mode: the one asked for is set before the file takes the name.
  if (mode !== undefined) chmodSync(tmp, mode);
  renameSync(tmp, path);
}
