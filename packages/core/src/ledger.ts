/**
 * The activation ledger (DESIGN.md 6.7): whoever activates something that must be released in
 * an emergency records it here first, and clears it after the release. The guard cannot ask a
 * dead daemon what it holds, so it works from these files.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { writeFileAtomic } from './files.js';
import { join } from 'node:path';

/** A process group an exec resource runs in: the guard SIGKILLs it. */
export type ProcessGroupEntry = { kind: 'process-group'; pgid: number; group: string; resource: string; owner: string };
/** A floating IP address on an interface: the guard removes it. */
export type FipEntry = { kind: 'fip'; address: string; interface: string; group: string; resource: string; owner: string };
export type LedgerEntry = ProcessGroupEntry | FipEntry;

export class Ledger {
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  #file(entry: LedgerEntry): string {
    const name = entry.kind === 'process-group' ? `pgid-${entry.pgid}` : `fip-${entry.address.replace('/', '_')}-${entry.interface}`;
    return join(this.#dir, `${name}.json`);
  }

  /** Records an entry; written atomically (temp file + rename) so a reader never sees half. */
  record(entry: LedgerEntry): void {
    const file = this.#file(entry);
    writeFileAtomic(file, JSON.stringify(entry));
  }

  /** Whether this entry is recorded (say, an address this server added and has not removed). */
  has(entry: LedgerEntry): boolean {
    return existsSync(this.#file(entry));
  }

  clear(entry: LedgerEntry): void {
    rmSync(this.#file(entry), { force: true });
  }

  list(): LedgerEntry[] {
    return readLedger(this.#dir);
  }
}

export function readLedger(dir: string): LedgerEntry[] {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  const out: LedgerEntry[] = [];
  for (const f of files) {
    try {
      out.push(JSON.parse(readFileSync(join(dir, f), 'utf8')) as LedgerEntry);
    } catch {
      // unreadable entry: nothing we can release from it
    }
  }
  return out;
}
