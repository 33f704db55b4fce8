/** Writing the small state files Tandem keeps (ledger, registry, counters) so a reader never sees half of one. */
import { randomBytes } from 'node:crypto';
import { chmodSync, renameSync, rmSync, writeFileSync } from 'node:fs';

/**
 * Writes `text` to `path` through a temporary file of its own and a rename: a crash mid-write
 * leaves the old file, and with `mode` the content never sits in a file with wider permissions.
 * The temporary name is the writer's own (pid and random suffix), so two writers of one path (the
 * servers of a cluster that keep the configuration file on shared storage install it at the same
 * time) never meet in it: each rename is whole, the last one wins. A crash between the write and
 * the rename leaves the temporary file behind (`NAME.PID.HEX.tmp`, which no reader opens).
 */
export function writeFileAtomic(path: string, text: string, mode?: number): void {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    writeFileSync(tmp, text, { flag: 'wx', ...(mode !== undefined ? { mode } : {}) });
    // The umask narrows a new file's mode: the one asked for is set before the file takes the name.
    if (mode !== undefined) chmodSync(tmp, mode);
    renameSync(tmp, path);
  } catch (err) {
    try {
      rmSync(tmp, { force: true });
    } catch {
      // The write's own error is the one to report.
    }
    throw err;
  }
}
