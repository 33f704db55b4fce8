/**
 * What a previous life of rc left running. rc records every process group it spawns in the
 * activation ledger (owner `rc`) and clears it once the group is gone; entries found when rc
 * starts belong to an rc that died. Their groups are killed before rc serves anything: left
 * alone, autoStart would start the resources a second time, and a stale entry would later let
 * the guard kill whatever group reuses that pgid.
 */
import { liveGroups, signalGroup, waitGroupGone, type AlertLog, type Ledger, type LedgerEntry, type Logger } from '@tandem/core';
import { KILL_WAIT_MS } from './drivers/exec.js';

export interface LeftoverDeps {
  ledger: Ledger;
  alerts: AlertLog;
  log: Logger;
}

/** Kills the live process groups of rc's ledger entries (SIGKILL, bounded wait) and clears the entries; returns the groups killed. */
export async function killLeftovers(deps: LeftoverDeps): Promise<LedgerEntry[]> {
  const entries = deps.ledger.list().filter((e) => e.kind === 'process-group' && e.owner === 'rc');
  const live = liveGroups(entries.map((e) => e.pgid));
  const killed: LedgerEntry[] = [];
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
