/**
 * `process`: at least `minCount` live processes named `processName`, matched against
 * /proc/<pid>/comm (the kernel's 15-character name) or the basename of argv[0].
 */
import { readFile, readdir } from 'node:fs/promises';
import { basename } from 'node:path';
import { isAlive, type MonitorConfig } from '@tandem/core';
import { failed, healthy, type Monitor } from './monitor.js';

async function readOrEmpty(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return ''; // the process exited while we looked
  }
}

/** Pids of the live processes whose comm or argv[0] basename is `name`. */
export async function findProcesses(name: string, signal?: AbortSignal): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (signal?.aborted) break;
    if (!/^\d+$/.test(entry)) continue;
    const comm = (await readOrEmpty(`/proc/${entry}/comm`)).trimEnd();
    const argv0 = (await readOrEmpty(`/proc/${entry}/cmdline`)).split('\0')[0] ?? '';
    if ((comm === name || (argv0 !== '' && basename(argv0) === name)) && isAlive(Number(entry))) found.push(Number(entry));
  }
  return found;
}

export function processMonitor(config: MonitorConfig): Monitor {
  const name = config.processName ?? '';
  const minCount = config.minCount ?? 1;
  return {
    async check(signal) {
      const pids = await findProcesses(name, signal);
      const seen = `${pids.length} process${pids.length === 1 ? '' : 'es'} named ${name}`;
      return pids.length >= minCount ? healthy(seen) : failed(`${seen}, expected at least ${minCount}`);
    },
  };
}
