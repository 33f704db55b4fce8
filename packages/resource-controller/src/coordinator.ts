/**
 * What the coordinator's resource controller needs to plan across servers (DESIGN.md section 5),
 * derived from the cluster view its node manager sends: the servers as the planner sees them,
 * where each group is, and which groups a server that went down left behind. Pure: the caller
 * passes the view, this server's own groups and the orders still settling.
 */
import type { ResourceConfig } from '@tandem/core';
import type { GroupPlacement, PlannerServer } from './planner/index.js';

export interface ViewServer {
  name: string;
  state: string;
  incarnation: number;
  sinceMs: number;
  groups: { group: string; state: string }[];
  local: boolean;
}

export interface View {
  servers: ViewServer[];
  coordinator: string;
  startupDone: boolean;
}

/** Where an order this coordinator gave put a group, until the view shows it. */
export interface Settling {
  server: string;
  state: string;
}

/**
 * A server that holds nothing any more: not heard on any path. A server that is `isolated` but
 * still heard (fencing itself) still holds its groups until it is gone: nothing of it may start
 * elsewhere before then.
 */
export const isDown = (state: string): boolean => state === 'offline';
/** States of a server whose groups are not known yet: startup waits for them. */
const UNSETTLED: ReadonlySet<string> = new Set(['starting', 'unknown']);

/** The servers for the planner. During the startup planning a server still starting counts as not known yet. */
export function plannerServers(view: View, startup = false): PlannerServer[] {
  return view.servers.map((s) => ({ name: s.name, state: startup && s.state === 'starting' ? 'unknown' : s.state }));
}

/** Whether every server has said what it runs (or is down): the coordinator may then plan the startup. */
export function settled(view: View): boolean {
  return view.servers.every((s) => s.local || !UNSETTLED.has(s.state));
}

/**
 * Where every group is: this server's own groups as it knows them, the groups the servers that
 * are up report, and the orders still settling (they win: the reports lag behind by an exchange).
 * A server that is down holds nothing here; see `orphans`.
 */
export function livePlacements(view: View, local: GroupPlacement[], settling: Map<string, Settling>): GroupPlacement[] {
  const out = new Map<string, GroupPlacement>();
  for (const s of view.servers) {
    if (s.local || isDown(s.state)) continue;
    for (const g of s.groups) out.set(g.group, { group: g.group, state: g.state, server: s.name });
  }
  for (const p of local) if (p.state !== 'offline') out.set(p.group, p);
  for (const [group, where] of settling) {
    if (where.state === 'offline') out.delete(group);
    else out.set(group, { group, state: where.state, server: where.server });
  }
  return [...out.values()];
}

/** The groups a server that went down last reported and that no server that is up runs now. */
export function orphans(view: View, dead: ViewServer, live: GroupPlacement[]): GroupPlacement[] {
  const held = new Set(live.map((p) => p.group));
  return dead.groups.filter((g) => !held.has(g.group)).map((g) => ({ group: g.group, state: g.state, server: dead.name }));
}

/** The servers that are online now and were not in the previous view (they may take groups back). */
export function newlyOnline(before: View | undefined, now: View): string[] {
  const was = new Set((before?.servers ?? []).filter((s) => s.state === 'online').map((s) => s.name));
  return now.servers.filter((s) => s.state === 'online' && !was.has(s.name)).map((s) => s.name);
}

/**
 * Whether a resource may start during the fence grace of a failover from a server that went
 * down: a floating IP that checks for a duplicate first. An address the loser still holds answers
 * that check, and a FAILOVER start waits while it does; anything else waits the grace out.
 */
export function provesItselfFree(r: ResourceConfig, event: string): boolean {
  return event === 'FAILOVER' && r.type === 'fip' && r.checkDuplicate;
}
