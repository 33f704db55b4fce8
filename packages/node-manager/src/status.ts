/**
 * Gathers the status of this server from the daemons that own each part (rc: groups, rm:
 * monitors, hb: servers and paths, every daemon: ping). Each part is asked in parallel with a
 * short timeout; a part that does not answer is left out (and its daemon shows as unreachable)
 * rather than failing the whole status.
 */
import { TandemError, toTandemError, type DaemonName, type RpcClient } from '@tandem/core';
import type { tandem } from '@tandem/protocol';
import type { PeerView } from './membership/table.js';

type ClusterStatusInit = tandem.v1.ClusterStatus.$Properties;
type DaemonStatusInit = tandem.v1.DaemonStatus.$Properties;
type ServerStatusInit = tandem.v1.ServerStatus.$Properties;

/** The daemons nm asks, in the order `tandem status` lists them (nm itself comes first). */
export const PEER_DAEMONS = ['hb', 'rc', 'rm', 'md', 'guard'] as const satisfies readonly DaemonName[];
export type PeerDaemon = (typeof PEER_DAEMONS)[number];

export type StatusClients = Record<PeerDaemon, Pick<RpcClient, 'call'>>;

export interface LocalView {
  cluster: string;
  server: string;
  /** this server's cluster service state, as nm holds it */
  state: string;
  /** the configured servers, in configuration order */
  servers: string[];
  /** what nm learned from the other node managers (none with one server) */
  peers?: PeerView[];
  /** nm's own line in the daemons table */
  self: DaemonStatusInit;
  /** the groups the other servers that are up run (several servers), from the cluster view */
  remoteGroups?: { server: string; group: string; state: string }[];
}

export const STATUS_TIMEOUT_MS = 1000;

/** Told about each part that is missing from a status, and why. */
export type OnPartMissing = (part: string, err: TandemError) => void;

/**
 * The servers as hb sees them, completed from the configuration when hb is silent, with this
 * server's state replaced by the cluster service state (hb only knows that it hears us). Each
 * peer carries what its node manager reported (reach, own state, whom it hears), and its
 * incarnation comes from there when hb does not know it.
 */
export function mergeServers(view: LocalView, heard: ServerStatusInit[] | undefined): ServerStatusInit[] {
  const byName = new Map((heard ?? []).map((s) => [s.name ?? '', s]));
  const learned = new Map((view.peers ?? []).map((p) => [p.server, p]));
  return view.servers.map((name) => {
    const s = byName.get(name);
    if (name === view.server) return { ...s, name, local: true, state: view.state };
    const merged: ServerStatusInit = s ? { ...s, name, local: false } : { name, local: false, state: 'unknown' };
    const peer = learned.get(name);
    if (!peer) return merged;
    merged.reach = peer.reach;
    if (peer.reported) {
      merged.reportedState = peer.reported.state;
      merged.hears = peer.reported.hears;
      if (!merged.incarnation) merged.incarnation = peer.reported.incarnation;
    }
    return merged;
  });
}

export async function gatherStatus(
  view: LocalView,
  clients: StatusClients,
  onPartMissing: OnPartMissing,
  timeoutMs = STATUS_TIMEOUT_MS,
): Promise<ClusterStatusInit> {
  const opts = { timeoutMs };
  /** The answer of one part, or undefined when its daemon failed or did not answer in time. */
  const ask = async <T>(part: string, call: () => Promise<T>): Promise<NonNullable<T> | undefined> => {
    try {
      const answer = await call();
      if (answer === undefined || answer === null) throw new TandemError('INTERNAL', `${part}: the reply has no ${part}`);
      return answer;
    } catch (err) {
      onPartMissing(part, toTandemError(err));
      return undefined;
    }
  };
  const [groups, monitors, servers, ...pings] = await Promise.all([
    ask('groups', async () => (await clients.rc.call({ status: {} }, opts)).groups?.groups),
    ask('monitors', async () => (await clients.rm.call({ status: {} }, opts)).monitors?.monitors),
    ask('servers', async () => (await clients.hb.call({ status: {} }, opts)).servers?.servers),
    ...PEER_DAEMONS.map((d) => ask(`${d} ping`, async () => (await clients[d].call({ ping: {} }, opts)).daemon)),
  ]);
  const daemons: DaemonStatusInit[] = [
    view.self,
    ...PEER_DAEMONS.map((name, i): DaemonStatusInit => pings[i] ?? { name, pid: 0, state: 'unreachable', rssKb: 0 }),
  ];
  return {
    cluster: view.cluster,
    server: view.server,
    state: view.state,
    servers: mergeServers(view, servers),
    groups: placeRemoteGroups(groups ?? [], view.remoteGroups ?? []),
    monitors: monitors ?? [],
    mirrors: [],
    daemons,
    mirrorSummary: 'no mirrors',
  };
}

/** A group offline here but running on another server shows where it runs, as that server reports it. */
export function placeRemoteGroups(
  groups: tandem.v1.GroupStatus.$Properties[],
  remote: { server: string; group: string; state: string }[],
): tandem.v1.GroupStatus.$Properties[] {
  return groups.map((g) => {
    if (g.state !== 'offline') return g;
    const there = remote.find((r) => r.group === g.name);
    return there ? { ...g, state: there.state, server: there.server, resources: [] } : g;
  });
}
