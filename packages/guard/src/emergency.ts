/**
 * The emergency procedure (DESIGN.md 6.7): release what the activation ledger records, write
 * the alerts, then run the configured action. The release is synchronous up to the kill: no
 * await and no logging stand between the trigger and the SIGKILLs.
 */
import { spawn } from 'node:child_process';
import { closeSync, fsyncSync, openSync, readFileSync } from 'node:fs';
import {
  Ledger,
  liveGroups,
  readLedger,
  removeAddress,
  runOsAction,
  signalGroup,
  sleep,
  type AlertId,
  type AlertLog,
  type Config,
  type EmergencyAction,
  type FipEntry,
  type ProcessGroupEntry,
  type Logger,
  type OsAction,
  type Paths,
} from '@tandem/core';

/** How long an `exec` emergency command may run before it is killed. */
export const EXEC_TIMEOUT_MS = 30_000;
const POLL_MS = 1;

/** The guard's own process group: never a target, whatever the ledger says. */
const OWN_PGRP = (() => {
  try {
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so cut at the last ')'
    const stat = readFileSync('/proc/self/stat', 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
  } catch {
    return process.pid;
  }
})();

/** Entries the guard can act on: process groups with a real pgid that is not its own. */
function killable(entries: unknown[]): ProcessGroupEntry[] {
  return entries.filter(
    (e): e is ProcessGroupEntry =>
      typeof e === 'object' &&
      e !== null &&
      (e as ProcessGroupEntry).kind === 'process-group' &&
      Number.isInteger((e as ProcessGroupEntry).pgid) &&
      (e as ProcessGroupEntry).pgid > 1 &&
      (e as ProcessGroupEntry).pgid !== OWN_PGRP,
  );
}

/** Entries the guard can act on: floating IP addresses with an interface. */
function removable(entries: unknown[]): FipEntry[] {
  return entries.filter(
    (e): e is FipEntry =>
      typeof e === 'object' &&
      e !== null &&
      (e as FipEntry).kind === 'fip' &&
      typeof (e as FipEntry).address === 'string' &&
      typeof (e as FipEntry).interface === 'string',
  );
}

export interface AddressRelease {
  removed: FipEntry[];
  failed: { entry: FipEntry; detail: string }[];
}

/**
 * Step 1c, alongside the wait for the process groups: removes every floating IP the ledger
 * records, each bounded by the deadline, and clears the removed ones from the ledger.
 */
export async function removeLedgerAddresses(ledgerDir: string, deadlineMs: number): Promise<AddressRelease> {
  const entries = removable(readLedger(ledgerDir));
  const results = await Promise.all(
    entries.map(async (entry) => ({ entry, ...(await removeAddress(entry.address, entry.interface, deadlineMs)) })),
  );
  const out: AddressRelease = { removed: [], failed: [] };
  for (const r of results) {
    if (r.ok) out.removed.push(r.entry);
    else out.failed.push({ entry: r.entry, detail: r.detail });
  }
  try {
    const ledger = new Ledger(ledgerDir);
    for (const e of out.removed) ledger.clear(e);
  } catch {
    // the entries stay; removing an absent address again is harmless
  }
  return out;
}

export interface GroupKill {
  /** the ledger entries whose groups were sent SIGKILL */
  entries: ProcessGroupEntry[];
  /** performance.now() when the first signal was about to go out */
  startedAt: number;
}

/** Step 1a, synchronous: SIGKILL every process group the ledger records. */
export function killLedgerGroups(ledgerDir: string): GroupKill {
  const startedAt = performance.now();
  const entries = killable(readLedger(ledgerDir));
  for (const e of entries) signalGroup(e.pgid, 'SIGKILL');
  return { entries, startedAt };
}

export interface Release {
  released: ProcessGroupEntry[];
  /** groups still holding processes at the deadline */
  stuck: ProcessGroupEntry[];
  elapsedMs: number;
  /** why released entries could not be cleared from the ledger (they stay for the next emergency or an operator) */
  ledgerError?: string;
}

/**
 * Step 1b: waits until every killed group is gone or the deadline passes; clears the ledger of
 * the released ones. Each poll is one pass over /proc for all pending groups. Never throws: a
 * ledger that cannot be cleared must not stop the action and the fence.
 */
export async function awaitRelease(kill: GroupKill, ledgerDir: string, deadlineMs: number): Promise<Release> {
  let pending = kill.entries;
  const released: ProcessGroupEntry[] = [];
  for (;;) {
    const holding = liveGroups(pending.map((e) => e.pgid));
    for (const e of pending) if (!holding.has(e.pgid)) released.push(e);
    pending = pending.filter((e) => holding.has(e.pgid));
    if (pending.length === 0 || performance.now() - kill.startedAt >= deadlineMs) break;
    for (const e of pending) signalGroup(e.pgid, 'SIGKILL'); // a member forked after the first signal
    await sleep(POLL_MS);
  }
  const release: Release = { released, stuck: pending, elapsedMs: Math.round(performance.now() - kill.startedAt) };
  try {
    const ledger = new Ledger(ledgerDir);
    for (const e of released) ledger.clear(e);
  } catch (err) {
    release.ledgerError = (err as Error).message;
  }
  return release;
}

/** What the configured action amounts to. */
export type ActionPlan = { kind: 'exec'; command: string } | { kind: 'none' } | { kind: 'os'; action: OsAction; escalateTo?: OsAction };

export function planAction(action: EmergencyAction, command: string | undefined): ActionPlan {
  switch (action) {
    case 'exec':
      return { kind: 'exec', command: command ?? 'true' };
    case 'stop-services':
      return { kind: 'none' };
    case 'shutdown':
    case 'reboot':
      return { kind: 'os', action, escalateTo: 'reset' };
    case 'reset':
    case 'panic':
    case 'poweroff':
      return { kind: 'os', action };
  }
}

/** The environment of an `exec` emergency command. */
export function emergencyEnv(base: NodeJS.ProcessEnv, reason: string, server: string): NodeJS.ProcessEnv {
  return { ...base, TANDEM_EMERGENCY_REASON: reason, TANDEM_SERVER_NAME: server };
}

/**
 * How long after the command's exit its stderr may stay open. A command that leaves a background
 * process holding stderr has still finished: its outcome is reported without waiting for that process.
 */
const STDERR_CLOSE_GRACE_MS = 200;

/** Runs the emergency command with /bin/sh -c, bounded; resolves with a description of the outcome. */
export function runEmergencyCommand(command: string, env: NodeJS.ProcessEnv, timeoutMs = EXEC_TIMEOUT_MS): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], { env, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-400);
    });
    let finished = false;
    let grace: NodeJS.Timeout | undefined;
    const done = (outcome: string): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      clearTimeout(grace);
      resolve(outcome);
    };
    const timer = setTimeout(() => {
      if (child.pid) signalGroup(child.pid, 'SIGKILL');
      done(`command "${command}" timed out after ${timeoutMs} ms and was killed`);
    }, timeoutMs);
    const outcome = (code: number | null, signal: NodeJS.Signals | null): string => {
      const how = signal ? `was killed by ${signal}` : `exited with ${code}`;
      return `command "${command}" ${how}${stderr.trim() ? `: ${stderr.trim()}` : ''}`;
    };
    child.on('error', (err) => done(`command "${command}" could not run: ${err.message}`));
    // 'close' comes once stderr is drained too, so the message is complete; 'exit' may come first.
    child.on('close', (code, signal) => done(outcome(code, signal)));
    child.on('exit', (code, signal) => {
      if (finished) return;
      grace = setTimeout(() => {
        child.stderr.destroy();
        done(outcome(code, signal));
      }, STDERR_CLOSE_GRACE_MS);
    });
  });
}

export interface EmergencyContext {
  config: Config;
  server: string;
  paths: Paths;
  alerts: AlertLog;
  log: Logger;
  env?: NodeJS.ProcessEnv;
}

export interface Trigger {
  reason: string;
  /** TND-GD-0901 (exited) or 0902 (stalled); none for a requested emergency */
  alert?: Extract<AlertId, 'TND-GD-0901' | 'TND-GD-0902'>;
}

export interface EmergencyOutcome {
  release: Release;
  action: string;
}

/** Forces a file to disk: a reset or panic may follow at once and would lose the page cache. */
function syncFile(path: string): void {
  try {
    const fd = openSync(path, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // nothing written yet, or no permission: the alert lines were still appended
  }
}

const describe = (entries: ProcessGroupEntry[]): string =>
  entries
    .map((e) => `${e.group}/${e.resource} (pgid ${e.pgid})`)
    .sort()
    .join(', ') || 'nothing';

/**
 * Runs the whole procedure. The kill happens before this function first yields, so a caller
 * that calls it synchronously from the detection has released the groups when it returns.
 * `fence` stops the rest of this server's Tandem; it starts right after the kill, because the
 * surviving daemons must not act on a server whose resources are being released, and the ledger
 * is swept a second time once they are gone, for what they activated meanwhile.
 */
export async function runEmergency(ctx: EmergencyContext, trigger: Trigger, fence: () => Promise<string>): Promise<EmergencyOutcome> {
  const deadlineMs = ctx.config.cluster.emergency.deadlineMs;
  const kill = killLedgerGroups(ctx.paths.ledger);
  const releasing = Promise.all([awaitRelease(kill, ctx.paths.ledger, deadlineMs), removeLedgerAddresses(ctx.paths.ledger, deadlineMs)]);
  // The fence starts right away, so that the surviving daemons stop activating anything, but after
  // the caller's synchronous code (it names the targets once the kill is done: `await null`).
  const fencing = (async () => {
    await null;
    return settle(fence, 'the fence failed');
  })();
  const [[first, firstAddresses], fenced] = await Promise.all([releasing, fencing]);
  // What a daemon activated between the first sweep and its fence is in the ledger now: sweep again.
  const again = killLedgerGroups(ctx.paths.ledger);
  const [late, lateAddresses] = await Promise.all([
    awaitRelease(again, ctx.paths.ledger, deadlineMs),
    removeLedgerAddresses(ctx.paths.ledger, deadlineMs),
  ]);
  const release: Release = {
    released: [...first.released, ...late.released],
    // the first sweep's survivors are still in the ledger: the second sweep has them
    stuck: late.stuck,
    elapsedMs: first.elapsedMs,
    ...(first.ledgerError || late.ledgerError ? { ledgerError: first.ledgerError ?? late.ledgerError } : {}),
  };
  const addresses: AddressRelease = {
    removed: [...firstAddresses.removed, ...lateAddresses.removed],
    // as with the groups: an address that could not be removed was tried again
    failed: lateAddresses.failed,
  };

  // Bookkeeping comes next; none of it may keep the action from running.
  const details: Record<string, string> = {
    reason: trigger.reason,
    released: describe(release.released),
    stuck: describe(release.stuck),
    elapsedMs: String(release.elapsedMs),
    addressesRemoved: addresses.removed.map((a) => `${a.address} on ${a.interface}`).join(', ') || 'none',
  };
  if (addresses.failed.length) details['addressesFailed'] = addresses.failed.map((f) => f.detail).join('; ');
  if (release.ledgerError) details['ledgerError'] = release.ledgerError;
  const alert = trigger.alert;
  if (alert) bestEffort(ctx, 'the trigger alert', () => ctx.alerts.raise(alert, trigger.reason));
  const stuck = release.stuck.length ? `, ${release.stuck.length} still alive at the deadline: ${details['stuck']}` : '';
  const fips =
    addresses.removed.length || addresses.failed.length
      ? `; removed ${addresses.removed.length} floating IP(s)${addresses.failed.length ? `, ${addresses.failed.length} could not be removed` : ''}`
      : '';
  const summary = `emergency: ${trigger.reason}; released ${release.released.length} process group(s) in ${release.elapsedMs} ms${stuck}${fips}`;
  bestEffort(ctx, 'the release alert', () => ctx.alerts.raise('TND-GD-0903', summary, details));
  bestEffort(ctx, 'syncing the alert log', () => syncFile(ctx.paths.alerts));
  bestEffort(ctx, 'logging the release', () => ctx.log.error(summary, details));

  const action = await settle(() => runAction(ctx, trigger.reason), 'the action failed');
  const message = `emergency action ${ctx.config.cluster.emergency.action}: ${action}`;
  bestEffort(ctx, 'the action alert', () => ctx.alerts.raise('TND-GD-0904', message, { fence: fenced }));
  bestEffort(ctx, 'syncing the alert log', () => syncFile(ctx.paths.alerts));
  bestEffort(ctx, 'logging the action', () => ctx.log.error(message, { fence: fenced }));
  return { release, action };
}

/** Runs one bookkeeping step of the procedure; its failure is logged if the logger still works, and never thrown. */
function bestEffort(ctx: EmergencyContext, what: string, step: () => unknown): void {
  try {
    step();
  } catch (err) {
    try {
      ctx.log.error(`emergency: ${what} failed; the procedure goes on`, { error: String(err) });
    } catch {
      // the logger is what failed: nothing is left to tell
    }
  }
}

/** The outcome of an effect as a description, whether it resolved, rejected or threw. */
async function settle(effect: () => Promise<string>, failed: string): Promise<string> {
  try {
    return await effect();
  } catch (err) {
    return `${failed}: ${(err as Error).message}`;
  }
}

function osAction(ctx: EmergencyContext, action: OsAction): string {
  try {
    return runOsAction(action, ctx.env ?? process.env);
  } catch (err) {
    return `${action} failed: ${(err as Error).message}`;
  }
}

async function runAction(ctx: EmergencyContext, reason: string): Promise<string> {
  const plan = planAction(ctx.config.cluster.emergency.action, ctx.config.cluster.emergency.command);
  switch (plan.kind) {
    case 'none':
      return 'Tandem services stopped';
    case 'exec':
      return runEmergencyCommand(plan.command, emergencyEnv(ctx.env ?? process.env, reason, ctx.server));
    case 'os': {
      const done = osAction(ctx, plan.action);
      const escalateTo = plan.escalateTo;
      if (!escalateTo) return done;
      // An orderly shutdown that has not taken this process down within the heartbeat
      // timeout is stuck; the peers are about to take over, so the server must go now.
      const afterMs = ctx.config.cluster.heartbeat.timeoutMs;
      setTimeout(() => {
        const escalated = osAction(ctx, escalateTo);
        const message = `emergency action ${plan.action} did not complete within ${afterMs} ms: escalated to ${escalateTo}: ${escalated}`;
        bestEffort(ctx, 'the escalation alert', () => ctx.alerts.raise('TND-GD-0904', message));
        bestEffort(ctx, 'syncing the alert log', () => syncFile(ctx.paths.alerts));
      }, afterMs);
      return `${done}; escalates to ${escalateTo} if this server is still up in ${afterMs} ms`;
    }
  }
}
