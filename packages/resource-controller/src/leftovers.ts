/**
 * What a previous life of rc left running. rc records every process group it spawns in the
 * activation ledger (owner `rc`) and clears it once the group is gone; entries found when rc
 * starts belong to an rc that died. Their groups are killed before rc serves anything: left
 * alone, autoStart would start the resources a second time, and a stale entry would later let
 * the guard kill whatever group reuses that pgid.
 */
import {
  liveGroups,
  removeAddress,
  signalGroup,
  waitGroupGone,
  type AlertLog,
  type FipEntry,
  type Ledger,
  type LedgerEntry,
  type Logger,
  type ProcessGroupEntry,
} from '@tandem/core';
import { KILL_WAIT_MS } from './drivers/exec.js';

export interface LeftoverDeps {
  ledger: Ledger;
  alerts: AlertLog;
  log: Logger;
}

/**
 * Kills the live process groups of rc's ledger entries (SIGKILL, bounded wait), removes its
 * floating IPs, and clears the entries; returns what was released.
 */
export async function killLeftovers(deps: LeftoverDeps): Promise<LedgerEntry[]> {
  const mine = deps.ledger.list().filter((e) => e.owner === 'rc');
  const [killed, removed] = await Promise.all([
    killGroups(
      deps,
      mine.filter((e): e is ProcessGroupEntry => e.kind === 'process-group'),
    ),
    removeAddresses(
      deps,
      mine.filter((e): e is FipEntry => e.kind === 'fip'),
    ),
  ]);
  return [...killed, ...removed];
}

/** Floating IPs a previous rc added and nobody removed: they must not stay up where the group no longer runs. */
async function removeAddresses(deps: LeftoverDeps, entries: FipEntry[]): Promise<FipEntry[]> {
  const removed: FipEntry[] = [];
  for (const entry of entries) {
    const ids = { group: entry.group, resource: entry.resource, address: entry.address };
    const result = await removeAddress(entry.address, entry.interface, KILL_WAIT_MS);
    const what = `address ${entry.address} of resource ${entry.group}/${entry.resource} left over from a previous tandem-rc`;
    deps.alerts.raise('TND-RC-0104', `${what}: ${result.detail}`, ids);
    // One that could not be removed stays in the ledger: the guard still knows about it.
    if (!result.ok) continue;
    deps.ledger.clear(entry);
    removed.push(entry);
  }
  return removed;
}

async function killGroups(deps: LeftoverDeps, entries: ProcessGroupEntry[]): Promise<ProcessGroupEntry[]> {
  const live = liveGroups(entries.map((e) => e.pgid));
  const killed: ProcessGroupEntry[] = [];
  await Promise.all(
    entries.map(async (entry) => {
      const ids = { group: entry.group, resource: entry.resource, pgid: String(entry.pgid) };
      if (!live.has(entry.pgid)) {
        deps.ledger.clear(entry);
        return;
      }
      const what = `process group ${entry.pgid} of resource ${entry.group}/${entry.resource}`;
      signalGroup(entry.pgid, 'SIGKILL');
      if (!(await waitGroupGone(entry.pgid, KILL_WAIT_MS))) {
        // Kept in the ledger: the guard still knows about it.
        deps.alerts.raise('TND-RC-0104', `${what} left over from a previous tandem-rc: survived SIGKILL`, ids);
        deps.log.error(`${what} left over from a previous tandem-rc survived SIGKILL`, ids);
        return;
      }
      deps.alerts.raise('TND-RC-0104', `${what} left over from a previous tandem-rc: killed`, ids);
      deps.log.warn(`${what} left over from a previous tandem-rc: killed`, ids);
      deps.ledger.clear(entry);
      killed.push(entry);
    }),
  );
  return killed;
}
