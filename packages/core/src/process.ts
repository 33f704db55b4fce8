/** Small process helpers shared by the daemons and the guard. */
import { readdirSync, readFileSync } from 'node:fs';

/** True if the process exists and is not a zombie (a zombie has released everything). */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/**
 * The process groups among `pgids` that still hold a live process, in one pass over /proc.
 * kill(2) also reaches zombies, which hold nothing but linger where the init process does not
 * reap orphans (some containers and VMs), so members are checked in /proc and zombies skipped.
 */
export function liveGroups(pgids: Iterable<number>): Set<number> {
  const wanted = new Set<number>();
  for (const pgid of pgids) {
    try {
      process.kill(-pgid, 0);
      wanted.add(pgid);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EPERM') wanted.add(pgid);
    }
  }
  const live = new Set<number>();
  if (wanted.size === 0) return live;
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return wanted;
  }
  for (const pid of pids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue;
    }
    // fields after "(comm) ": state ppid pgrp …
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const group = Number(pgrp);
    if (wanted.has(group) && state !== 'Z' && state !== 'X') {
      live.add(group);
      if (live.size === wanted.size) break;
    }
  }
  return live;
}

/** True while a live (non-zombie) process of the process group exists. */
export function isGroupAlive(pgid: number): boolean {
  return liveGroups([pgid]).size > 0;
}

/** Polls until the group has no live process or `timeoutMs` passed; true when it is gone. */
export async function waitGroupGone(pgid: number, timeoutMs: number, pollMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isGroupAlive(pgid)) {
    if (Date.now() >= deadline) return false;
    await sleep(pollMs);
  }
  return true;
}

/** Sends a signal to a whole process group; a group that is already gone is not an error. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  if (!Number.isInteger(pgid) || pgid <= 1) return false;
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Resident memory of a process in kB (0 when it is gone). */
export function rssKb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
