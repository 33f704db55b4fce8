/**
 * What rc's group list means for a monitor, as pure functions: is the thing it watches online
 * on this server (`when: active`), and is its recovery target active or busy (the ladder's facts).
 */
import type { MonitorConfig } from '@tandem/core';
import type { LadderFacts } from './ladder.js';
import type { ResourceFacts } from './monitors/monitor.js';

/** One group as rc reports it (a subset of GroupStatus). */
export interface GroupFacts {
  name: string;
  state: string;
  /** where it runs; empty when offline */
  server: string;
  resources: ResourceFacts[];
}

const BUSY = new Set(['starting', 'stopping']);
const GROUP_UP = new Set(['online', 'partial']);

function here(groups: readonly GroupFacts[], group: string, server: string): GroupFacts | undefined {
  return groups.find((g) => g.name === group && g.server === server);
}

/** The resource named `name` in a group that runs on `server`. */
export function localResource(groups: readonly GroupFacts[], name: string, server: string): ResourceFacts | undefined {
  for (const g of groups) {
    if (g.server !== server) continue;
    const r = g.resources.find((x) => x.name === name);
    if (r) return r;
  }
  return undefined;
}

/**
 * `when: active`: the monitor's target resource is online here; without a target resource,
 * its recovery group is online here (a monitor whose recovery target is the server is always active).
 */
export function watchedActive(config: MonitorConfig, groups: readonly GroupFacts[], server: string): boolean {
  if (config.target !== undefined) return localResource(groups, config.target, server)?.state === 'online';
  if (config.recovery.kind === 'server') return true;
  return GROUP_UP.has(here(groups, config.recovery.group, server)?.state ?? '');
}

/** The ladder's facts about the recovery target on this server. */
export function recoveryFacts(recovery: MonitorConfig['recovery'], groups: readonly GroupFacts[], server: string): LadderFacts {
  if (recovery.kind === 'server') return { targetActive: true, targetBusy: false };
  const group = here(groups, recovery.group, server);
  if (!group) return { targetActive: false, targetBusy: false };
  const groupBusy = BUSY.has(group.state) || group.resources.some((r) => BUSY.has(r.state));
  if (recovery.kind === 'group') return { targetActive: GROUP_UP.has(group.state), targetBusy: groupBusy };
  const resource = group.resources.find((r) => r.name === recovery.target);
  return { targetActive: resource?.state === 'online', targetBusy: BUSY.has(group.state) || BUSY.has(resource?.state ?? '') };
}
