/**
 * The placement planner (DESIGN.md section 5): a pure function from configuration, cluster state
 * and one event to an ordered list of start/stop actions, and explicit refusals. Rules: a group
 * runs on the first server of its failover policy that is online and may host it; two exclusive
 * groups never share a server; a group that holds a server is not started again; startup starts
 * auto-start groups only; failback happens only for groups with autoFailback.
 */
import type { GroupPlacement, Plan, PlanAction, PlanEvent, PlanInput, PlannerGroup, PlanRefusal } from './types.js';

/** The cluster as the planner sees it while it plans: planned actions update who holds which server. */
class Cluster {
  readonly #groups: Map<string, PlannerGroup>;
  readonly #serverState: Map<string, string>;
  /** group → its placement, for every group that holds a server */
  readonly #held = new Map<string, GroupPlacement>();

  constructor(input: PlanInput) {
    this.#groups = new Map(input.groups.map((g) => [g.name, g]));
    this.#serverState = new Map(input.servers.map((s) => [s.name, s.state]));
    for (const p of input.placement) if (p.state !== 'offline' && p.server !== '') this.#held.set(p.group, p);
  }

  group(name: string): PlannerGroup | undefined {
    return this.#groups.get(name);
  }

  groupsInOrder(): PlannerGroup[] {
    return [...this.#groups.values()];
  }

  placement(group: string): GroupPlacement | undefined {
    return this.#held.get(group);
  }

  serverState(server: string): string | undefined {
    return this.#serverState.get(server);
  }

  hold(group: string, server: string): void {
    this.#held.set(group, { group, state: 'starting', server });
  }

  release(group: string): void {
    this.#held.delete(group);
  }

  /** Why `server` cannot host `group`, or undefined when it can. */
  whyNot(group: PlannerGroup, server: string): string | undefined {
    const state = this.#serverState.get(server);
    if (state === undefined) return `${server} is not a server of this cluster`;
    if (!group.servers.includes(server)) return `${server} is not in the servers of group ${group.name}`;
    if (state !== 'online') return `${server} is ${state}`;
    if (group.exclusive) {
      for (const p of this.#held.values()) {
        if (p.group !== group.name && p.server === server && this.#groups.get(p.group)?.exclusive) {
          return `${server} runs exclusive group ${p.group}`;
        }
      }
    }
    return undefined;
  }

  /** The first server of the group's policy (minus `exclude`) that can host it, or why none can. */
  choose(group: PlannerGroup, exclude: string[]): { server: string } | { reason: string } {
    const candidates = group.servers.filter((s) => !exclude.includes(s));
    const problems: string[] = [];
    for (const s of candidates) {
      const why = this.whyNot(group, s);
      if (why === undefined) return { server: s };
      if (this.#serverState.get(s) === 'online') problems.push(why);
    }
    const reason = problems.length > 0 ? problems.join(', ') : `no ${exclude.length > 0 ? 'other ' : ''}server in its policy is online`;
    return { reason: `no server can host group ${group.name}: ${reason}` };
  }
}

export function plan(input: PlanInput): Plan {
  const cluster = new Cluster(input);
  const out: Plan = { actions: [], refusals: [] };
  const event: PlanEvent = input.event;
  switch (event.kind) {
    case 'startup':
      for (const g of cluster.groupsInOrder()) {
        if (!g.autoStart || cluster.placement(g.name)) continue;
        // A server of higher priority whose state is not known yet (not heard from during the
        // startup wait) may be about to start this group itself: placing it lower would run it twice.
        const choice = cluster.choose(g, []);
        const before = 'server' in choice ? g.servers.indexOf(choice.server) : g.servers.length;
        const unheard = g.servers.slice(0, before).find((s) => cluster.serverState(s) === 'unknown');
        if (unheard) refuse(out, g.name, `group ${g.name} waits for ${unheard}: its state is not known yet`);
        else if ('reason' in choice) refuse(out, g.name, choice.reason, 'NO_SERVER');
        else act(cluster, out, { kind: 'start', group: g.name, server: choice.server, event: 'START' });
      }
      break;
    case 'start':
      withGroup(cluster, event.group, out, (g) => planStart(cluster, g, event.server, out));
      break;
    case 'move':
      withGroup(cluster, event.group, out, (g) => planMove(cluster, g, event.server, out));
      break;
    case 'failover':
      withGroup(cluster, event.group, out, (g) => planFailover(cluster, g, event.from, out));
      break;
    case 'server-down': {
      const lost = cluster.groupsInOrder().filter((g) => cluster.placement(g.name)?.server === event.server);
      // The dead server holds nothing any more: release all of its groups before placing any of them.
      for (const g of lost) cluster.release(g.name);
      for (const g of lost) startSomewhere(cluster, g, [event.server], 'FAILOVER', out);
      break;
    }
    case 'server-up':
      for (const g of cluster.groupsInOrder()) planFailback(cluster, g, event.server, out);
      break;
  }
  return out;
}

function withGroup(cluster: Cluster, name: string, out: Plan, then: (g: PlannerGroup) => void): void {
  const g = cluster.group(name);
  if (g) then(g);
  else out.refusals.push({ group: name, reason: `no group named ${name}` });
}

function refuse(out: Plan, group: string, reason: string, code?: PlanRefusal['code']): void {
  out.refusals.push({ group, reason, ...(code ? { code } : {}) } satisfies PlanRefusal);
}

function act(cluster: Cluster, out: Plan, action: PlanAction): void {
  if (action.kind === 'start') cluster.hold(action.group, action.server);
  else cluster.release(action.group);
  out.actions.push(action);
}

function startSomewhere(cluster: Cluster, g: PlannerGroup, exclude: string[], event: 'START' | 'FAILOVER', out: Plan): void {
  const choice = cluster.choose(g, exclude);
  if ('reason' in choice) refuse(out, g.name, choice.reason, 'NO_SERVER');
  else act(cluster, out, { kind: 'start', group: g.name, server: choice.server, event });
}

function planStart(cluster: Cluster, g: PlannerGroup, server: string | undefined, out: Plan): void {
  const here = cluster.placement(g.name);
  if (here) {
    if (here.state === 'online') return refuse(out, g.name, `group ${g.name} is already online on ${here.server}`);
    if (here.state === 'starting' || here.state === 'stopping')
      return refuse(out, g.name, `group ${g.name} is ${here.state} on ${here.server}`);
    // partial or failed: it still holds resources where it is, so it can only be completed there
    if (server && server !== here.server) {
      return refuse(out, g.name, `group ${g.name} cannot start on ${server}: it is ${here.state} on ${here.server} (stop it first)`);
    }
    const why = cluster.whyNot(g, here.server);
    if (why) return refuse(out, g.name, `group ${g.name} cannot start on ${here.server}: ${why}`);
    return act(cluster, out, { kind: 'start', group: g.name, server: here.server, event: 'START' });
  }
  if (!server) return startSomewhere(cluster, g, [], 'START', out);
  const why = cluster.whyNot(g, server);
  if (why) return refuse(out, g.name, `group ${g.name} cannot start on ${server}: ${why}`);
  act(cluster, out, { kind: 'start', group: g.name, server, event: 'START' });
}

function planMove(cluster: Cluster, g: PlannerGroup, server: string | undefined, out: Plan): void {
  const here = cluster.placement(g.name);
  if (!here) return refuse(out, g.name, `group ${g.name} is offline: nothing to move (start it instead)`);
  let target: string;
  if (server) {
    if (server === here.server) return refuse(out, g.name, `group ${g.name} is already on ${server}`);
    const why = cluster.whyNot(g, server);
    if (why) return refuse(out, g.name, `group ${g.name} cannot move to ${server}: ${why}`);
    target = server;
  } else {
    const choice = cluster.choose(g, [here.server]);
    if ('reason' in choice) return refuse(out, g.name, choice.reason, 'NO_SERVER');
    target = choice.server;
  }
  act(cluster, out, { kind: 'stop', group: g.name, server: here.server, factor: 'GROUPMOVE' });
  act(cluster, out, { kind: 'start', group: g.name, server: target, event: 'START' });
}

function planFailover(cluster: Cluster, g: PlannerGroup, from: string, out: Plan): void {
  const choice = cluster.choose(g, [from]);
  // Refused before anything stops: the caller's failover rung is skipped and the group stays.
  if ('reason' in choice) return refuse(out, g.name, choice.reason, 'NO_SERVER');
  const here = cluster.placement(g.name);
  if (here && here.server === from && cluster.serverState(from) !== 'offline') {
    act(cluster, out, { kind: 'stop', group: g.name, server: from, factor: 'GROUPFAILOVER' });
  }
  act(cluster, out, { kind: 'start', group: g.name, server: choice.server, event: 'FAILOVER' });
}

/** A returning server takes back the online groups that prefer it, if they fail back automatically. */
function planFailback(cluster: Cluster, g: PlannerGroup, returning: string, out: Plan): void {
  const here = cluster.placement(g.name);
  if (!g.autoFailback || !here || here.state !== 'online' || here.server === returning) return;
  const best = cluster.choose(g, []);
  if (!('server' in best) || best.server !== returning) return;
  act(cluster, out, { kind: 'stop', group: g.name, server: here.server, factor: 'GROUPMOVE' });
  act(cluster, out, { kind: 'start', group: g.name, server: returning, event: 'START' });
}
