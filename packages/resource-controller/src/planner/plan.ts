/**
 * The placement planner (DESIGN.md section 5): a pure function from configuration, cluster state
 * and one event to an ordered list of start/stop actions, and explicit refusals. Rules: a group
 * runs on the first server of its failover policy that is online and may host it; two exclusive
 * groups never share a server; a group that holds a server is not started again; startup starts
 * auto-start groups only; failback happens only for groups with autoFailback; a manual group is
 * never failed over when its server goes; a server that lost partition resolution starts nothing.
 * The start events follow the reference's script rules: START at startup on a server at least as
 * high in the policy as where the group last ran, on an operator start and on a move destination;
 * FAILOVER on a failover destination and at startup below where the group last ran.
 */
import type { GroupPlacement, Plan, PlanAction, PlanEvent, PlanInput, PlannerGroup, PlanRefusal } from './types.js';

/** The cluster as the planner sees it while it plans: planned actions update who holds which server. */
class Cluster {
  readonly #groups: Map<string, PlannerGroup>;
  readonly #serverState: Map<string, string>;
  /** group → its placement, for every group that holds a server */
  readonly #held = new Map<string, GroupPlacement>();
  /** group → where it ran at the last shutdown */
  readonly #lastServer = new Map<string, string>();

  constructor(input: PlanInput) {
    this.#groups = new Map(input.groups.map((g) => [g.name, g]));
    this.#serverState = new Map(input.servers.map((s) => [s.name, s.state]));
    for (const p of input.placement) {
      if (p.state !== 'offline' && p.server !== '') this.#held.set(p.group, p);
      if (p.lastServer) this.#lastServer.set(p.group, p.lastServer);
    }
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

  lastServer(group: string): string | undefined {
    return this.#lastServer.get(group);
  }

  serverState(server: string): string | undefined {
    return this.#serverState.get(server);
  }

  serversIn(state: string): string[] {
    return [...this.#serverState].filter(([, s]) => s === state).map(([name]) => name);
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
        // a moving group holds its destination too
        const there = p.server === server || (p.state === 'moving' && p.destination === server);
        if (p.group !== group.name && there && this.#groups.get(p.group)?.exclusive) {
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
        if (!event.groups || event.groups.includes(g.name)) planStartup(cluster, g, event.startupWaitOver ?? false, out);
      }
      break;
    case 'start':
      withGroup(cluster, event.group, out, (g) => planStart(cluster, g, event.server, out));
      break;
    case 'stop':
      withGroup(cluster, event.group, out, (g) => planStop(cluster, g, out));
      break;
    case 'move':
      withGroup(cluster, event.group, out, (g) => planMove(cluster, g, event.server, out));
      break;
    case 'failover':
      withGroup(cluster, event.group, out, (g) => planFailover(cluster, g, event.from, event.limit, out));
      break;
    case 'server-down':
      planServerDown(cluster, event.server, event.fenceGraceOver ?? true, out);
      break;
    case 'server-up':
      for (const g of cluster.groupsInOrder()) planFailback(cluster, g, event.server, out);
      break;
    case 'server-shutdown': {
      // Every group stops first (it may make room for another's failover), then each fails over.
      const leaving = cluster.groupsInOrder().filter((g) => cluster.placement(g.name)?.server === event.server);
      for (const g of leaving) act(cluster, out, { kind: 'stop', group: g.name, server: event.server, factor: 'SERVERSHUTDOWN' });
      for (const g of leaving) {
        if (!g.autoStart) refuse(out, g.name, `group ${g.name} is not failed over: it is a manual group (autoStart false)`);
        else startSomewhere(cluster, g, [event.server], 'FAILOVER', out);
      }
      break;
    }
    case 'cluster-shutdown':
      for (const g of cluster.groupsInOrder()) {
        const here = cluster.placement(g.name);
        if (here && here.state !== 'stopping')
          act(cluster, out, { kind: 'stop', group: g.name, server: here.server, factor: 'CLUSTERSHUTDOWN' });
      }
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

function planStartup(cluster: Cluster, g: PlannerGroup, waitOver: boolean, out: Plan): void {
  if (!g.autoStart || cluster.placement(g.name)) return;
  const choice = cluster.choose(g, []);
  if (!waitOver) {
    // A server of higher priority whose state is not known yet (not heard from during the
    // startup wait) may be about to start this group itself: placing it lower would run it twice.
    const before = 'server' in choice ? g.servers.indexOf(choice.server) : g.servers.length;
    const unheard = g.servers.slice(0, before).find((s) => cluster.serverState(s) === 'unknown');
    if (unheard) return refuse(out, g.name, `group ${g.name} waits for ${unheard}: its state is not known yet`);
  }
  if ('reason' in choice) return refuse(out, g.name, choice.reason, 'NO_SERVER');
  // Below the server where it ran at the last shutdown, the start scripts must take over (FAILOVER).
  const last = cluster.lastServer(g.name);
  const lastRank = last === undefined ? -1 : g.servers.indexOf(last);
  const event = lastRank >= 0 && g.servers.indexOf(choice.server) > lastRank ? 'FAILOVER' : 'START';
  act(cluster, out, { kind: 'start', group: g.name, server: choice.server, event });
}

function planStart(cluster: Cluster, g: PlannerGroup, server: string | undefined, out: Plan): void {
  const here = cluster.placement(g.name);
  if (here) {
    if (here.state === 'online') return refuse(out, g.name, `group ${g.name} is already online on ${here.server}`);
    if (here.state === 'moving') return refuse(out, g.name, movingReason(here));
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

function planStop(cluster: Cluster, g: PlannerGroup, out: Plan): void {
  const here = cluster.placement(g.name);
  if (!here) return refuse(out, g.name, `group ${g.name} is already offline`);
  if (here.state === 'moving') return refuse(out, g.name, movingReason(here));
  if (here.state === 'stopping') return refuse(out, g.name, `group ${g.name} is already stopping on ${here.server}`);
  act(cluster, out, { kind: 'stop', group: g.name, server: here.server, factor: 'GROUPSTOP' });
}

function movingReason(here: GroupPlacement): string {
  return `group ${here.group} is moving from ${here.server} to ${here.destination ?? 'another server'}`;
}

function planMove(cluster: Cluster, g: PlannerGroup, server: string | undefined, out: Plan): void {
  const here = cluster.placement(g.name);
  if (!here) return refuse(out, g.name, `group ${g.name} is offline: nothing to move (start it instead)`);
  if (here.state === 'moving') return refuse(out, g.name, movingReason(here));
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

function planFailover(cluster: Cluster, g: PlannerGroup, from: string, limit: number | undefined, out: Plan): void {
  const here = cluster.placement(g.name);
  if (here?.state === 'moving') return refuse(out, g.name, movingReason(here));
  const done = here?.failovers ?? 0;
  if (limit !== undefined && done >= limit) {
    return refuse(
      out,
      g.name,
      `group ${g.name} failed over ${done} times in a row (limit ${limit}): it is not failed over again`,
      'FAILOVER_LIMIT',
    );
  }
  const choice = cluster.choose(g, [from]);
  // Refused before anything stops: the caller's failover rung is skipped and the group stays.
  if ('reason' in choice) return refuse(out, g.name, choice.reason, 'NO_SERVER');
  if (here && here.server === from && cluster.serverState(from) !== 'offline') {
    act(cluster, out, { kind: 'stop', group: g.name, server: from, factor: 'GROUPFAILOVER' });
  }
  act(cluster, out, { kind: 'start', group: g.name, server: choice.server, event: 'FAILOVER' });
}

/**
 * A server fell silent. Its groups fail over (FAILOVER, nothing stops on the dead server) once it
 * has had its fence grace; a group moving to it goes to the first server of its policy that can
 * host it. Seen from a server that lost partition resolution, nothing starts: it stops its own groups.
 */
function planServerDown(cluster: Cluster, dead: string, fenceGraceOver: boolean, out: Plan): void {
  const groups = cluster.groupsInOrder();
  const lost = groups.filter((g) => cluster.placement(g.name)?.server === dead);
  const losers = cluster.serversIn('lost-partition');
  if (losers.length > 0) {
    for (const g of groups) {
      const here = cluster.placement(g.name);
      if (here && losers.includes(here.server))
        act(cluster, out, { kind: 'stop', group: g.name, server: here.server, factor: 'SERVERSHUTDOWN' });
    }
    for (const g of lost) refuse(out, g.name, `group ${g.name} is not failed over: ${losers.join(', ')} lost partition resolution`);
    return;
  }
  const headed = groups.filter((g) => {
    const p = cluster.placement(g.name);
    return p?.state === 'moving' && p.destination === dead && p.server !== dead;
  });
  // The dead server holds nothing any more: release all of its groups before placing any of them.
  const destinationOf = new Map(lost.map((g) => [g.name, cluster.placement(g.name)?.destination]));
  for (const g of [...lost, ...headed]) cluster.release(g.name);
  for (const g of groups) {
    if (headed.includes(g)) startSomewhere(cluster, g, [dead], 'FAILOVER', out);
    if (!lost.includes(g)) continue;
    if (!g.autoStart) refuse(out, g.name, `group ${g.name} is not failed over: it is a manual group (autoStart false)`);
    else if (!fenceGraceOver) refuse(out, g.name, `group ${g.name} waits for the fence grace of ${dead}`);
    else {
      // A group whose move had not finished stopping still goes where the operator sent it, if it can.
      const destination = destinationOf.get(g.name);
      if (destination && cluster.whyNot(g, destination) === undefined)
        act(cluster, out, { kind: 'start', group: g.name, server: destination, event: 'FAILOVER' });
      else startSomewhere(cluster, g, [dead], 'FAILOVER', out);
    }
  }
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
