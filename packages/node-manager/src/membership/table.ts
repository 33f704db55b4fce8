/**
 * What this node manager knows of its peers' node managers (DESIGN.md sections 5 and 6.1): the
 * last membership each one reported and whether it answered within the heartbeat timeout.
 * Pure: the caller passes the clock.
 */
import { TandemError, type Config } from '@tandem/core';
import type { tandem } from '@tandem/protocol';

/** `unknown` until a peer answered or the heartbeat timeout since the start has passed. */
export type PeerReach = 'reachable' | 'unreachable' | 'unknown';

/** A server a node manager no longer hears within the quorum lease. */
export interface LostPeer {
  server: string;
  silentMs: number;
}

export interface ReportedMembership {
  incarnation: number;
  /** the peer's own server state */
  state: string;
  /** the servers the peer's heartbeat hears */
  hears: string[];
  /** the servers the peer heard once but not within the quorum lease, and for how long (when it sent this) */
  lost: LostPeer[];
  configGeneration: number;
  sentAtMs: number;
  /** the groups that are not offline on the peer */
  groups: { group: string; state: string }[];
  /** the servers the peer declared down, with the incarnation each had */
  down: { server: string; incarnation: number }[];
  /** the peer knows that the cluster's auto-start groups have been placed */
  startupDone: boolean;
}

/** One path to a peer's node manager: this server's DEALER to one of the peer's interconnect addresses. */
export interface PathView {
  /** the peer's interconnect address, in configuration order (the heartbeat path index) */
  address: string;
  /** whether the peer answered on this path within the heartbeat timeout */
  answering: boolean;
  /** when the peer last answered on this path, 0 when never */
  lastAnsweredMs: number;
}

export interface PeerView {
  server: string;
  reach: PeerReach;
  /** when the peer last answered or asked, on any path, 0 when never */
  lastHeardMs: number;
  /** what it last reported, if anything */
  reported?: ReportedMembership;
  /** this server's paths to the peer and which of them answered */
  paths: PathView[];
}

/**
 * Refuses a membership that does not come from a configured peer: another cluster, a server that
 * is not in the configuration, or a server claiming to be this one.
 */
export function checkMembership(m: tandem.v1.Membership, config: Config, self: string): void {
  if (m.cluster !== config.cluster.name) {
    throw new TandemError('REFUSED', `membership from cluster ${m.cluster || '""'} refused: this is cluster ${config.cluster.name}`);
  }
  if (m.server === self) throw new TandemError('REFUSED', `membership from ${self} refused: that is this server`);
  if (!config.servers.some((s) => s.name === m.server)) {
    throw new TandemError('REFUSED', `membership from ${m.server || '""'} refused: no such server in cluster ${config.cluster.name}`);
  }
}

export class MembershipTable {
  readonly #startedMs: number;
  readonly #timeoutMs: number;
  readonly #peers: Map<
    string,
    { lastHeardMs: number; reported?: ReportedMembership; paths: { address: string; lastAnsweredMs: number }[] }
  >;

  /** `peers`: each peer's name and interconnect addresses (one path per address). */
  constructor(peers: { server: string; addresses: string[] }[], startedMs: number, timeoutMs: number) {
    this.#startedMs = startedMs;
    this.#timeoutMs = timeoutMs;
    this.#peers = new Map(
      peers.map((p) => [p.server, { lastHeardMs: 0, paths: p.addresses.map((address) => ({ address, lastAnsweredMs: 0 })) }]),
    );
  }

  /**
   * Records a checked membership: a peer's request (no path: which of this server's addresses it
   * came in on is not known) or its reply on path `path`. An older incarnation than the one known
   * is ignored (a message from the peer's previous life); 0 means not known yet.
   */
  record(m: tandem.v1.Membership, nowMs: number, path?: number): void {
    const peer = this.#peers.get(m.server);
    if (!peer) return;
    // 0 = not known yet (the peer's heartbeat had not told its node manager): never "older", and it
    // does not forget an incarnation already known.
    const known = peer.reported?.incarnation ?? 0;
    if (m.incarnation !== 0 && m.incarnation < known) return;
    const incarnation = m.incarnation || known;
    peer.lastHeardMs = nowMs;
    const answered = path === undefined ? undefined : peer.paths[path];
    if (answered) answered.lastAnsweredMs = nowMs;
    peer.reported = {
      incarnation,
      state: m.state,
      hears: [...m.hears],
      lost: m.lost.map((l) => ({ server: l.server, silentMs: Number(l.silentMs) })),
      configGeneration: m.configGeneration,
      sentAtMs: m.sentAtMs,
      groups: m.groups.map((g) => ({ group: g.group, state: g.state })),
      down: m.down.map((d) => ({ server: d.server, incarnation: d.incarnation })),
      startupDone: m.startupDone,
    };
  }

  reachOf(server: string, nowMs: number): PeerReach {
    const peer = this.#peers.get(server);
    if (!peer) return 'unknown';
    if (peer.lastHeardMs > 0 && nowMs - peer.lastHeardMs <= this.#timeoutMs) return 'reachable';
    return nowMs - this.#startedMs > this.#timeoutMs ? 'unreachable' : 'unknown';
  }

  views(nowMs: number): PeerView[] {
    return [...this.#peers].map(([server, peer]) => ({
      server,
      reach: this.reachOf(server, nowMs),
      lastHeardMs: peer.lastHeardMs,
      ...(peer.reported ? { reported: peer.reported } : {}),
      paths: peer.paths.map((p) => ({
        address: p.address,
        answering: p.lastAnsweredMs > 0 && nowMs - p.lastAnsweredMs <= this.#timeoutMs,
        lastAnsweredMs: p.lastAnsweredMs,
      })),
    }));
  }
}
