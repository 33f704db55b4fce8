/**
 * The `exec` resource: start and stop scripts run by /bin/sh in their own process group, output
 * appended to the resource's log. `sync`: the start script runs to completion (exit 0 = online).
 * `async`: the start command is a long-running process the group owns (online once spawned; if
 * it dies it stays dead: the monitor decides what to do). Every process group is in the
 * activation ledger from the tick it is spawned until it is gone, so the guard can kill it if
 * this daemon dies. A timeout kills the whole process group.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  isAlive,
  isGroupAlive,
  signalGroup,
  sleep,
  waitGroupGone,
  type ExecResourceConfig,
  type Ledger,
  type LedgerEntry,
} from '@tandem/core';
import type { DriverStatus, ResourceDriver } from './driver.js';

/** How long a process group may take to vanish after SIGKILL. */
const KILL_WAIT_MS = 5000;

type Exit = { code: number | null; signal: NodeJS.Signals | null } | { error: string };

/** A script or process this driver started: its process group and ledger entry. */
interface Run {
  child: ChildProcess;
  pgid: number;
  entry: LedgerEntry;
  exit: Promise<Exit>;
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
    if (this.#held && isGroupAlive(this.#held.pgid)) {
      throw new Error(`already running as process group ${this.#held.pgid}: stop it first`);
    }
    this.#exitDetail = '';
    if (this.#resource.mode === 'async') {
      const run = await this.#spawn('start', this.#resource.start, env);
      this.#held = run;
      void run.exit.then((exit) => {
        if (this.#held === run) this.#exitDetail = `process ${describeExit(exit)}`;
        try {
          if (!isGroupAlive(run.pgid)) this.#ledger.clear(run.entry);
        } catch {
          // the stop clears it again (#terminate), and can report a failure there
        }
      });
      return;
    }
    const run = await this.#spawn('start', this.#resource.start, env);
    const exit = await this.#waitOrKill(run, 'start', this.#resource.timeoutMs);
    // A start script may leave a daemon behind in its process group: the resource holds it until stopped.
    if (isGroupAlive(run.pgid)) this.#held = run;
    else this.#ledger.clear(run.entry);
    if (!succeeded(exit)) throw new Error(`start script ${describeExit(exit)}`);
  }

  async stop(env: Record<string, string>): Promise<void> {
    const problems: string[] = [];
    if (this.#resource.stop) {
      try {
        const run = await this.#spawn('stop', this.#resource.stop, env);
        const exit = await this.#waitOrKill(run, 'stop', this.#resource.stopTimeoutMs);
        if (!succeeded(exit)) problems.push(`stop script ${describeExit(exit)}`);
        await this.#terminate(run);
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
    if (this.#held) {
      try {
        await this.#terminate(this.#held);
        this.#held = undefined;
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
    if (problems.length > 0) throw new Error(problems.join('; '));
  }

  status(): DriverStatus {
    const pid = this.#resource.mode === 'async' ? (this.#held?.pgid ?? 0) : 0;
    return { pid, alive: pid > 0 && isAlive(pid), detail: this.#exitDetail };
  }

  /**
   * Spawns `/bin/sh -c command` as the leader of a new process group and records the group in
   * the ledger in the same tick, before this process can do anything else.
   */
  async #spawn(phase: 'start' | 'stop', command: string, env: Record<string, string>): Promise<Run> {
    mkdirSync(dirname(this.#logFile), { recursive: true });
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
    return { child, pgid, entry, exit };
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
    signalGroup(run.pgid, 'SIGKILL');
    await Promise.race([run.exit, sleep(KILL_WAIT_MS)]);
    if (await waitGroupGone(run.pgid, KILL_WAIT_MS)) this.#ledger.clear(run.entry);
    throw new Error(`${phase} script timed out after ${timeoutMs} ms: process group ${run.pgid} killed`);
  }

  /** SIGTERM to the process group, SIGKILL after stopTimeoutMs; clears the ledger entry once the group is gone. */
  async #terminate(run: Run): Promise<void> {
    if (isGroupAlive(run.pgid)) {
      signalGroup(run.pgid, 'SIGTERM');
      if (!(await waitGroupGone(run.pgid, this.#resource.stopTimeoutMs))) {
        signalGroup(run.pgid, 'SIGKILL');
        if (!(await waitGroupGone(run.pgid, KILL_WAIT_MS))) throw new Error(`process group ${run.pgid} survived SIGKILL`);
      }
    }
    this.#ledger.clear(run.entry);
  }
}
