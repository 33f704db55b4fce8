/**
 * The start values of each resource's last start, kept so that its stop script sees them
 * (docs/architecture.md, "Script environment"), also after this daemon restarts, until the
 * group stops; what is left when a server returns after going down tells which groups it held
 * (their local recovery, TANDEM_EVENT=RECOVER). One JSON file in the state directory, replaced
 * atomically on every change.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '@tandem/core';
import { dirname } from 'node:path';
import type { StartValues } from './script-env.js';

export class LastStartStore {
  readonly #file: string;
  readonly #values: Map<string, StartValues>;

  constructor(file: string) {
    this.#file = file;
    this.#values = new Map(Object.entries(readValues(file)));
  }

  get(group: string, resource: string): StartValues | undefined {
    return this.#values.get(`${group}/${resource}`);
  }

  set(group: string, resource: string, values: StartValues): void {
    this.#values.set(`${group}/${resource}`, values);
    this.#save();
  }

  /** The groups with a start kept: started here and not stopped since (also across a power cut). */
  groups(): string[] {
    return [...new Set([...this.#values.keys()].map((key) => key.slice(0, key.indexOf('/'))))];
  }

  /** Forgets a group's starts: it stopped here, or its local recovery ran. */
  forget(group: string): void {
    const before = this.#values.size;
    for (const key of [...this.#values.keys()]) if (key.startsWith(`${group}/`)) this.#values.delete(key);
    if (this.#values.size !== before) this.#save();
  }

  #save(): void {
    mkdirSync(dirname(this.#file), { recursive: true });
    writeFileAtomic(this.#file, JSON.stringify(Object.fromEntries(this.#values), null, 2));
  }
}

function readValues(file: string): Record<string, StartValues> {
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return parsed && typeof parsed === 'object' ? (parsed as Record<string, StartValues>) : {};
  } catch {
    // none yet, or unreadable: stops fall back to the values a start here would have
    return {};
  }
}
