/**
 * The `exec` resource: start and stop scripts run by /bin/sh in their own process group, output
 * appended to the resource's log. `sync`: the start script runs to completion (exit 0 = online).
 * `async`: the start command is a long-running process the group owns (online once spawned; if
 * it dies it stays dead: the monitor decides what to do). Every process group is in the
 * activation ledger from the tick it is spawned until it is gone, so the guard can kill it if
 * this daemon dies. A timeout kills the whole process group.
 *
 * A run is finished once its leader exited and its group holds no live process: from then on
 * its pgid may belong to anybody, so it is never signalled again. The leader's start time
 * (recorded at spawn) tells a reused pid from ours.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  isAlive,
  isGroupAlive,
  rotateIfLarge,
  signalGroup,
  sleep,
  type ExecResourceConfig,
  type Ledger,
  type LedgerEntry,
} from '@tandem/core';
import type { DriverStatus, ResourceDriver } from './driver.js';

/** How long a process group may take to vanish after SIGKILL. */
export const KILL_WAIT_MS = 5000;

type Exit = { code: number | null; signal: NodeJS.Signals | null } | { error: string };

/** How often a stop polls for a process group to be gone. */
const POLL_MS = 50;

/** A script or process this driver started: its process group and ledger entry. */
interface Run {
  child: ChildProcess;
  pgid: number;
  /** the leader's start time (field 22 of /proc/<pid>/stat), '' when it could not be read */
  startTime: string;
  entry: LedgerEntry;
  exit: Promise<Exit>;
  /** the leader's `exit` fired */
  exited: boolean;
  /** exited and its group seen empty: the pgid is not ours any more, the ledger entry is cleared */
  finished: boolean;
}

/** A process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat); '' when it does not exist. */
function processStartTime(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after "(comm) " start at field 3 (state)
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[22 - 3] ?? '';
  } catch {
    return '';
  }
}

export interface ExecDriverOptions {
  ledger: Ledger;
  /** the resource's log: scripts' stdout and stderr are appended to it */
  logFile: string;
}

function describeExit(exit: Exit): string {
  if ('error' in exit) return `could not run: ${exit.error}`;
  if (exit.code !== null) return `exited with code ${exit.code}`;
  return `was killed by ${exit.signal ?? 'a signal'}`;
}

const succeeded = (exit: Exit): boolean => !('error' in exit) && exit.code === 0;

export class ExecDriver implements ResourceDriver {
  readonly #resource: ExecResourceConfig;
  readonly #ledger: Ledger;
  readonly #logFile: string;
  /** The process group the resource holds while online: the async process, or what a sync start script left running. */
  #held: Run | undefined;
  #exitDetail = '';

  constructor(resource: ExecResourceConfig, opts: ExecDriverOptions) {
    this.#resource = resource;
    this.#ledger = opts.ledger;
    this.#logFile = opts.logFile;
  }

  async start(env: Record<string, string>): Promise<void> {
    if (this.#held && this.#groupAlive(this.#held)) {
      throw new Error(`already running as process group ${this.#held.pgid}: stop it first`);
    }
    this.#held = undefined;
    this.#exitDetail = '';
    if (this.#resource.mode === 'async') {
      const run = await this.#spawn('start', this.#resource.start, env);
      this.#held = run;
      void run.exit.then((exit) => {
        if (this.#held === run) this.#exitDetail = `process ${describeExit(exit)}`;
        // Marks the run finished (and clears its entry) when nothing of its group is left.
        this.#groupAlive(run);
      });
      return;
    }
    const run = await this.#spawn('start', this.#resource.start, env);
    const exit = await this.#waitOrKill(run, 'start', this.#resource.timeoutMs);
    // A start script may leave a daemon behind in its process group: the resource holds it until stopped.
    if (this.#groupAlive(run)) this.#held = run;
    if (!succeeded(exit)) throw new Error(`start script ${describeExit(exit)}`);
  }

  /**
   * The start script run for local recovery. rc runs it for sync resources only (an async
   * resource's command is the application itself: #recoverReturned skips it). Bounded like a
   * start; whatever it leaves running is ended, since the resource is not online after it.
   */
  async recover(env: Record<string, string>): Promise<void> {
    const run = await this.#spawn('start', this.#resource.start, env);
    const exit = await this.#waitOrKill(run, 'start', this.#resource.timeoutMs);
    if (this.#groupAlive(run)) await this.#terminate(run);
    if (!succeeded(exit)) throw new Error(`start script (RECOVER) ${describeExit(exit)}`);
  }

  /** Stop script (bounded), then the script's leftovers and the held group are terminated together. */
  async stop(env: Record<string, string>): Promise<void> {
    const problems: string[] = [];
    const ending: Run[] = [];
    if (this.#resource.stop) {
      try {
        const run = await this.#spawn('stop', this.#resource.stop, env);
        const exit = await this.#waitOrKill(run, 'stop', this.#resource.stopTimeoutMs);
        if (!succeeded(exit)) problems.push(`stop script ${describeExit(exit)}`);
        ending.push(run);
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
    const held = this.#held;
    if (held) ending.push(held);
    const results = await Promise.allSettled(ending.map((run) => this.#terminate(run)));
    results.forEach((result, i) => {
      if (result.status === 'rejected') problems.push((result.reason as Error).message);
      else if (ending[i] === held && this.#held === held) this.#held = undefined;
    });
    if (problems.length > 0) throw new Error(problems.join('; '));
  }

  /** Once the async process's run is finished its pid may belong to anybody: pid 0. */
  status(): DriverStatus {
    const run = this.#resource.mode === 'async' ? this.#held : undefined;
    // #groupAlive marks the run finished when it is over.
    if (!run || (!this.#groupAlive(run) && run.finished)) return { pid: 0, alive: false, detail: this.#exitDetail };
    return { pid: run.pgid, alive: this.#isOurs(run) && isAlive(run.pgid), detail: this.#exitDetail };
  }

  /**
   * Spawns `/bin/sh -c command` as the leader of a new process group and records the group in
   * the ledger in the same tick, before this process can do anything else.
   */
  async #spawn(phase: 'start' | 'stop', command: string, env: Record<string, string>): Promise<Run> {
    mkdirSync(dirname(this.#logFile), { recursive: true });
    rotateIfLarge(this.#logFile);
    appendFileSync(this.#logFile, `--- ${new Date().toISOString()} ${phase}: ${command}\n`);
    const fd = openSync(this.#logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn('/bin/sh', ['-c', command], {
        cwd: this.#resource.cwd,
        env: { ...process.env, ...this.#resource.env, ...env },
        detached: true,
        stdio: ['ignore', fd, fd],
      });
    } finally {
      closeSync(fd);
    }
    const exit = new Promise<Exit>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', (err) => resolve({ error: err.message }));
    });
    const pgid = child.pid;
    if (pgid === undefined) {
      throw new Error(`${phase} script ${describeExit(await exit)}`);
    }
    // Still this tick: the child cannot have been reaped yet, so the pid is ours.
    const startTime = processStartTime(pgid);
    const entry: LedgerEntry = { kind: 'process-group', pgid, group: this.#resource.group, resource: this.#resource.name, owner: 'rc' };
    try {
      this.#ledger.record(entry);
    } catch (err) {
      // Nothing may run that the guard would not know about.
      signalGroup(pgid, 'SIGKILL');
      throw new Error(`cannot record process group ${pgid} in the activation ledger (${(err as Error).message}): killed it`, {
        cause: err,
      });
    }
    const run: Run = { child, pgid, startTime, entry, exit, exited: false, finished: false };
    void exit.then(() => {
      run.exited = true;
    });
    return run;
  }

  /** False when a process with the run's pid exists but started at another time: the pid was reused. */
  #isOurs(run: Run): boolean {
    if (run.finished) return false;
    const now = processStartTime(run.pgid);
    return now === '' || run.startTime === '' || now === run.startTime;
  }

  /**
   * True while the run's process group holds a live process. A run whose leader exited and whose
   * group is seen empty (or whose pid now belongs to another process) is finished: its ledger
   * entry is cleared and its pgid never looked at again.
   */
  #groupAlive(run: Run): boolean {
    if (run.finished) return false;
    const ours = this.#isOurs(run);
    if (ours && isGroupAlive(run.pgid)) return true;
    if (run.exited || !ours) this.#finish(run);
    return false;
  }

  #finish(run: Run): void {
    run.finished = true;
    try {
      this.#ledger.clear(run.entry);
    } catch {
      // #terminate clears it again on the next stop, and reports a failure there
    }
  }

  /** Polls until the run's group is gone (see #groupAlive) or `timeoutMs` passed; true when it is gone. */
  async #waitGone(run: Run, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.#groupAlive(run)) {
      if (Date.now() >= deadline) return false;
      await sleep(POLL_MS);
    }
    return true;
  }

  /** Waits for a script to end; past the timeout, kills its whole process group and throws. */
  async #waitOrKill(run: Run, phase: 'start' | 'stop', timeoutMs: number): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const first = await Promise.race([run.exit, timedOut]);
    clearTimeout(timer);
    if (first !== 'timeout') return first;
    // The leader has not exited: the group is ours.
    signalGroup(run.pgid, 'SIGKILL');
    await Promise.race([run.exit, sleep(KILL_WAIT_MS)]);
    await this.#waitGone(run, KILL_WAIT_MS);
    throw new Error(`${phase} script timed out after ${timeoutMs} ms: process group ${run.pgid} killed`);
  }

  /** SIGTERM to the process group, SIGKILL after stopTimeoutMs; a finished run is never signalled. */
  async #terminate(run: Run): Promise<void> {
    if (this.#groupAlive(run)) {
      signalGroup(run.pgid, 'SIGTERM');
      if (!(await this.#waitGone(run, this.#resource.stopTimeoutMs))) {
        signalGroup(run.pgid, 'SIGKILL');
        if (!(await this.#waitGone(run, KILL_WAIT_MS))) throw new Error(`process group ${run.pgid} survived SIGKILL`);
      }
    }
    // The group is gone: its entry goes (again, if #finish could not clear it).
    this.#ledger.clear(run.entry);
  }
}

/**
 * The longest an exec resource's stop may take, from the driver's own bounds: the stop script
 * (its timeout, then SIGKILL and two waits), then its leftovers and the held group together
 * (SIGTERM, stopTimeout, SIGKILL, a wait); times the attempts of onStopFailure.
 */
export function execStopBudgetMs(resource: ExecResourceConfig): number {
  const script = resource.stop ? resource.stopTimeoutMs + 2 * KILL_WAIT_MS : 0;
  const terminate = resource.stopTimeoutMs + KILL_WAIT_MS;
  return (resource.onStopFailure.retries + 1) * (script + terminate);
}
