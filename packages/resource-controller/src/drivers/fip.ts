/**
 * The `fip` resource: a floating IPv4 address added to an interface where its group runs and
 * removed where it stops. Start refuses an address another host answers for within
 * duplicateWait (ARP duplicate address detection), adds it, then announces it with gratuitous
 * ARP in the background so that neighbours update their caches without holding up the start.
 * Every command runs without a shell, bounded by the resource's timeouts; start and stop are
 * idempotent.
 *
 * The address is in the activation ledger from just before it is added until it is seen gone,
 * so the guard removes it if this daemon dies.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  findAddress,
  removeAddress,
  rotateIfLarge,
  runCommand,
  sleep,
  type CommandResult,
  type FipEntry,
  type FipResourceConfig,
  type Ledger,
} from '@tandem/core';
import type { DriverStatus, ResourceDriver } from './driver.js';

/** How long one look at the interface's addresses may take (status refreshes). */
export const FIP_LOOK_TIMEOUT_MS = 5000;
/** What a stop may take beyond its commands' timeouts: killing a command that ran out of time, ending the announcement. */
export const FIP_STOP_MARGIN_MS = 1000;

/** What a look at the interface found: whether the address is there, or why nobody can tell. */
type Look = { present: boolean } | { failure: string };

export interface FipDriverOptions {
  ledger: Ledger;
  /** the resource's log: the commands run and what they said */
  logFile: string;
}

export class FipDriver implements ResourceDriver {
  readonly #resource: FipResourceConfig;
  readonly #ledger: Ledger;
  readonly #entry: FipEntry;
  readonly #logFile: string;
  /** the address without its prefix, as arping wants it */
  readonly #ip: string;
  /** status() answers from the last look, so that it never blocks the controller */
  #observed: DriverStatus = { pid: 0, alive: false, detail: 'not looked at yet' };
  /** bumped by every start and stop: a look begun before one of them is out of date when it ends */
  #generation = 0;
  #looking: Promise<DriverStatus> | undefined;
  #announcement: { abort: AbortController; done: Promise<void> } | undefined;
  /** why the last announcement failed, '' when it did not */
  #announceProblem = '';

  constructor(resource: FipResourceConfig, opts: FipDriverOptions) {
    this.#resource = resource;
    this.#ledger = opts.ledger;
    this.#logFile = opts.logFile;
    this.#entry = {
      kind: 'fip',
      address: resource.address,
      interface: resource.interface,
      group: resource.group,
      resource: resource.name,
      owner: 'rc',
    };
    this.#ip = resource.address.split('/')[0] ?? resource.address;
  }

  /**
   * Adds the address. On a failover (TANDEM_EVENT=FAILOVER) an address another host still answers
   * for is waited for, up to the start timeout: the server it fails over from may be frozen with
   * its kernel still answering ARP, and it releases the address when it wakes and fences itself.
   * Any other start refuses such an address at once.
   */
  async start(env: Record<string, string> = {}): Promise<void> {
    const { address, interface: ifname } = this.#resource;
    const deadline = Date.now() + this.#resource.timeoutMs;
    const left = (): number => deadline - Date.now();
    this.#generation++;
    this.#log('start', `adding ${address} to ${ifname}`);
    // The first duplicate check probes while the interface is looked at (it changes nothing): on a
    // failover the two are on the way to the address, one after the other they cost a process start more.
    const firstCheck = this.#resource.checkDuplicate ? settle(this.#duplicateCheck(left())) : undefined;
    const before = await this.#look(left());
    // Whatever happens next, no check is left running behind this start.
    const first = firstCheck && (await firstCheck);
    if ('failure' in before) throw new Error(`cannot read the addresses of ${ifname}: ${before.failure}`);
    if (before.present) {
      // Ours (recorded, not yet removed): started already. Anybody else's (a static address, an
      // interconnect): never taken over, since stopping the resource would then remove it.
      if (!this.#ledger.has(this.#entry)) {
        throw new Error(`${address} is already on ${ifname} but was not added by Tandem: remove it, or choose another address`);
      }
      this.#log('start', `${address} is already on ${ifname}`);
      this.#seen(true);
      return;
    }
    if (first) await this.#checkDuplicate(left, env['TANDEM_EVENT'] === 'FAILOVER', first);
    await this.#endAnnouncement();
    // Nothing may be added that the guard would not know about.
    this.#record();
    const add = await this.#run('start', 'ip', ['-4', 'addr', 'add', address, 'dev', ifname], left());
    if (add.code !== 0) {
      // Added by somebody else in between ("File exists"): what counts is that it is there now.
      const after = await this.#look(left());
      if (!('present' in after && after.present)) {
        // The entry stays unless the address is known to be absent.
        if ('present' in after) this.#ledger.clear(this.#entry);
        throw new Error(`cannot add ${address} to ${ifname}: ${add.failure}`);
      }
    }
    this.#seen(true);
    this.#announce();
  }

  /** Removes the address (an address already absent counts as removed), the same way the guard does in an emergency. */
  async stop(): Promise<void> {
    const { address, interface: ifname } = this.#resource;
    this.#generation++;
    await this.#endAnnouncement();
    this.#log('stop', `ip -4 addr del ${address} dev ${ifname}`);
    const removal = await removeAddress(address, ifname, this.#resource.stopTimeoutMs);
    this.#log('stop', removal.detail);
    if (!removal.ok) throw new Error(removal.detail);
    this.#ledger.clear(this.#entry);
    this.#seen(false);
  }

  /** The last look at the interface; starts a fresh one for the next call. */
  status(): DriverStatus {
    void this.refresh();
    const detail = [this.#observed.detail, this.#announceProblem].filter(Boolean).join('; ');
    return { ...this.#observed, detail };
  }

  /** Looks at the interface now and updates what status() answers; never rejects. */
  refresh(): Promise<DriverStatus> {
    if (!this.#looking) {
      const generation = this.#generation;
      this.#looking = this.#look(FIP_LOOK_TIMEOUT_MS).then((look) => {
        this.#looking = undefined;
        if (generation === this.#generation) {
          if ('present' in look) this.#seen(look.present);
          else
            this.#observed = { pid: 0, alive: false, detail: `cannot read the addresses of ${this.#resource.interface}: ${look.failure}` };
        }
        return this.#observed;
      });
    }
    return this.#looking;
  }

  /**
   * ARP duplicate address detection, waiting duplicateWait for an answer. arping's own deadline
   * counts whole seconds only, so it gets one beyond the wait and is killed when the wait is over
   * without an answer: exit 1 = somebody answered, exit 0 or still probing = nobody did. Bounded
   * by what is left of the start's timeout: a wait that does not fit fails the start.
   */
  async #checkDuplicate(left: () => number, waitForRelease: boolean, first: Settled<boolean>): Promise<void> {
    let answered = false;
    let silent = 0;
    for (let check = 0; ; check++) {
      const free = check === 0 ? unwrap(first) : await this.#duplicateCheck(left());
      if (free) {
        // Free at once: nobody held it. Once it was answered, one answer coming later than the
        // wait (a loaded host) must not pass for a release: only several checks in a row do.
        if (!answered || ++silent >= RELEASE_CHECKS) return;
        continue;
      }
      silent = 0;
      // Another round (a pause, the checks that prove a release, then the add) must fit in the start timeout.
      const pauseMs = this.#resource.duplicateWaitMs;
      if (!waitForRelease || left() < (RELEASE_CHECKS + 2) * pauseMs) {
        throw new Error(`${this.#ip} is already in use on the network (answered ARP)`);
      }
      if (!answered) this.#log('start', `${this.#ip} answered ARP: waiting for the server it fails over from to release it`);
      answered = true;
      await sleep(pauseMs);
    }
  }

  /**
   * One duplicate-address check: true when nobody answered for the address within the wait. The
   * wait starts when arping says it begins probing (its first line of output), not when it is
   * spawned: on a loaded machine the start of the process alone could use up the wait.
   */
  async #duplicateCheck(timeLeftMs: number): Promise<boolean> {
    const { interface: ifname, duplicateWaitMs } = this.#resource;
    const waited = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const seconds = String(Math.ceil(duplicateWaitMs / 1000) + 1);
    const args = ['-D', '-c', '1', '-w', seconds, '-I', ifname, this.#ip];
    this.#log('start', `arping ${args.join(' ')}`);
    // stdbuf: arping's output to a pipe is buffered until it exits; line by line, its first line
    // ("ARPING …", printed as it starts probing) arrives when it is written.
    const dad = await runCommand('stdbuf', ['-oL', 'arping', ...args], {
      timeoutMs: timeLeftMs,
      signal: waited.signal,
      onOutput: () => {
        timer ??= setTimeout(() => waited.abort(), duplicateWaitMs);
      },
    });
    clearTimeout(timer);
    if (dad.code === 1) return false;
    if (dad.code === 0 || waited.signal.aborted) {
      this.#log('start', `no answer for ${this.#ip} within ${duplicateWaitMs} ms${dad.code === 0 ? '' : ': arping stopped'}`);
      return true;
    }
    // runCommand names the tool it ran (stdbuf) in its own words ("stdbuf timed out ..."), not in arping's.
    const failure = dad.failure.replace(/^stdbuf\b/, 'arping');
    const said =
      typeof dad.code === 'number'
        ? `arping exited with code ${dad.code}${failure.includes('exited with code') ? '' : ` (${failure})`}`
        : failure.startsWith('arping ')
          ? failure
          : `arping: ${failure}`;
    this.#log('start', said);
    throw new Error(`cannot check whether ${this.#ip} is in use on ${ifname}: ${said}`);
  }

  #record(): void {
    try {
      this.#ledger.record(this.#entry);
    } catch (err) {
      throw new Error(`cannot record ${this.#resource.address} in the activation ledger: ${(err as Error).message}`, { cause: err });
    }
  }

  #seen(present: boolean): void {
    const { address, interface: ifname } = this.#resource;
    this.#observed = { pid: 0, alive: present, detail: `${address} ${present ? 'on' : 'not on'} ${ifname}` };
  }

  async #look(timeoutMs: number): Promise<Look> {
    const found = await findAddress(this.#resource.address, this.#resource.interface, { timeoutMs });
    return 'failure' in found ? found : { present: 'found' in found };
  }

  /** Gratuitous ARP in the background: its failure does not undo the start, it is logged and shown in the status. */
  #announce(): void {
    const count = this.#resource.arpCount;
    if (count === 0) return;
    const abort = new AbortController();
    const args = ['-U', '-c', String(count), '-I', this.#resource.interface, this.#ip];
    const done = this.#run('announce', 'arping', args, this.#resource.timeoutMs, abort.signal).then(
      (result) => {
        if (result.code === 0 || abort.signal.aborted) return;
        this.#announceProblem = `gratuitous ARP failed: arping ${result.failure}`;
      },
      (err: unknown) => {
        this.#announceProblem = `gratuitous ARP failed: ${(err as Error).message}`;
      },
    );
    this.#announcement = { abort, done };
  }

  /** An address being removed or added again must not be announced by an older announcement: it is killed. */
  async #endAnnouncement(): Promise<void> {
    const announcement = this.#announcement;
    this.#announcement = undefined;
    this.#announceProblem = '';
    if (!announcement) return;
    announcement.abort.abort();
    await announcement.done;
  }

  async #run(phase: string, file: string, args: string[], timeoutMs: number, signal?: AbortSignal): Promise<CommandResult> {
    this.#log(phase, `${file} ${args.join(' ')}`);
    const result = await runCommand(file, args, { timeoutMs, ...(signal ? { signal } : {}) });
    if (result.failure) this.#log(phase, `${file}: ${result.failure}`);
    return result;
  }

  /** Best effort: a full disk must not keep an address from being removed. */
  #log(phase: string, line: string): void {
    try {
      mkdirSync(dirname(this.#logFile), { recursive: true });
      rotateIfLarge(this.#logFile);
      appendFileSync(this.#logFile, `--- ${new Date().toISOString()} ${phase}: ${line}\n`);
    } catch {
      // the resource log is for the operator; the driver goes on without it
    }
  }
}

/**
 * The longest a fip resource's stop may take: removeAddress's two commands (each bounded by
 * stopTimeout) and a margin, times the attempts of onStopFailure.
 */
export function fipStopBudgetMs(resource: FipResourceConfig): number {
  return (resource.onStopFailure.retries + 1) * (2 * resource.stopTimeoutMs + FIP_STOP_MARGIN_MS);
}

/**
 * Checks in a row without an answer that prove an address answered before released. Seen here: a
 * frozen server's kernel answered 25 checks in a row, then one not within 50 ms (the host's two
 * cores saturated), and the address went up on two servers.
 */
const RELEASE_CHECKS = 3;

type Settled<T> = { value: T } | { error: unknown };

/** A promise that never rejects: its outcome, to be looked at later. */
const settle = <T>(p: Promise<T>): Promise<Settled<T>> =>
  p.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );

const unwrap = <T>(s: Settled<T>): T => {
  if ('error' in s) throw s.error;
  return s.value;
};
