/**
 * Per-server, per-path liveness from received heartbeats and the passage of time. Pure: the
 * caller feeds it verified heartbeats and the clock, and acts on the changes it returns.
 */

import { mutualHeardMs } from '@tandem/core';

export type PathState = 'up' | 'down';
export type PeerState = 'online' | 'offline';

export interface PathView {
  address: string;
  state: PathState;
  /** 0 when never heard */
  lastHeardMs: number;
}

export interface PeerView {
  name: string;
  state: PeerState;
  /** 0 until heard */
  incarnation: number;
  /** the state the peer reports about itself */
  reportedState: string;
  /** the peers it hears */
  hears: string[];
  /** when it last heard this server, as its heartbeats say (this server's clock); 0: not known */
  heardUsMs: number;
  paths: PathView[];
}

export type Change =
  | { kind: 'path'; server: string; pathIndex: number; address: string; state: PathState }
  | { kind: 'server'; server: string; state: PeerState }
  | { kind: 'incarnation'; server: string; incarnation: number; previous: number }
  /** a peer with several paths lost one and is now reachable on one only */
  | { kind: 'single-path'; server: string; pathIndex: number; address: string }
  /**
   * an online peer silent on every path for the quorum lease, or that has not heard this server
   * for it (quiet); or both heard again (not quiet)
   */
  | { kind: 'quiet'; server: string; quiet: boolean };

/** Why a verified heartbeat was not taken. */
export type TableDrop = 'unknown-server' | 'wrong-path' | 'replayed' | 'stale-incarnation';

export interface Received {
  server: string;
  incarnation: number;
  seq: number;
  state: string;
  hears: string[];
  pathIndex: number;
  /** the sender's silence of each peer online to it (ms) */
  silentMs?: Record<string, number>;
}

interface Peer {
  name: string;
  addresses: string[];
  incarnation: number;
  reportedState: string;
  hears: string[];
  /** per path: last accepted seq of the current incarnation, 0 when none */
  lastSeq: number[];
  lastHeardMs: number[];
  up: boolean[];
  /** when it last heard this server, as its heartbeats say; 0: not known */
  heardUsMs: number;
  /** it has said, in this life, how long it has not heard its peers (a version that does) */
  speaks: boolean;
  /** online, but silent on every path, or deaf to this server, for the quorum lease */
  quiet: boolean;
}

/** A silence fits a uint32 on the wire (some 49 days). */
const MAX_SILENCE_MS = 2 ** 32 - 1;

export class PeerTable {
  readonly #peers = new Map<string, Peer>();
  readonly #self: string;
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  /** undefined: peers are never reported quiet */
  readonly #quietMs: number | undefined;

  /**
   * `self`: this server, as peers name it in what they say they hear; `intervalMs`: how often
   * heartbeats are sent. `quietMs`: the quorum lease (DESIGN.md 6.2): a peer silent that long, or
   * that has not heard this server that long (`mutualHeardMs`), is reported quiet before it times out.
   * Left out, or not shorter than the timeout: no quiet reports.
   */
  constructor(
    self: string,
    peers: { name: string; addresses: string[] }[],
    timing: { intervalMs: number; timeoutMs: number; quietMs?: number | undefined },
  ) {
    const { intervalMs, timeoutMs, quietMs } = timing;
    this.#self = self;
    this.#intervalMs = intervalMs;
    this.#timeoutMs = timeoutMs;
    this.#quietMs = quietMs !== undefined && quietMs < timeoutMs ? quietMs : undefined;
    for (const p of peers) {
      this.#peers.set(p.name, {
        name: p.name,
        addresses: [...p.addresses],
        incarnation: 0,
        reportedState: '',
        hears: [],
        heardUsMs: 0,
        speaks: false,
        lastSeq: p.addresses.map(() => 0),
        lastHeardMs: p.addresses.map(() => 0),
        up: p.addresses.map(() => false),
        quiet: false,
      });
    }
  }

  /**
   * Takes a verified heartbeat that arrived on path `arrivedOn`. Replays (a seq not above the
   * last one on that path, or an older incarnation while the peer is online) are refused. An
   * older incarnation from a peer that is offline is a new life (its state directory may have
   * been wiped), so it is accepted.
   */
  receive(hb: Received, arrivedOn: number, nowMs: number): { drop?: TableDrop; changes: Change[] } {
    const peer = this.#peers.get(hb.server);
    if (!peer) return { drop: 'unknown-server', changes: [] };
    if (hb.pathIndex !== arrivedOn || arrivedOn >= peer.addresses.length) return { drop: 'wrong-path', changes: [] };
    const changes: Change[] = [];
    const online = peer.up.some(Boolean);
    if (hb.incarnation !== peer.incarnation) {
      if (hb.incarnation < peer.incarnation && online) return { drop: 'stale-incarnation', changes: [] };
      if (peer.incarnation !== 0)
        changes.push({ kind: 'incarnation', server: peer.name, incarnation: hb.incarnation, previous: peer.incarnation });
      peer.incarnation = hb.incarnation;
      peer.lastSeq = peer.addresses.map(() => 0);
      peer.heardUsMs = 0;
      peer.speaks = false;
    }
    if (hb.seq <= (peer.lastSeq[arrivedOn] ?? 0)) return { drop: 'replayed', changes };
    peer.lastSeq[arrivedOn] = hb.seq;
    peer.lastHeardMs[arrivedOn] = nowMs;
    peer.reportedState = hb.state;
    peer.hears = [...hb.hears];
    // A peer that has said how long it has not heard its peers, in this life, and comes back after
    // an outage is taken to have heard this server just now until it says so itself: a loss one
    // way that began during the outage is seen a lease and an interval later. (One that never said
    // anything, an older version, is judged by this server's own hearing alone.)
    if (Object.keys(hb.silentMs ?? {}).length > 0) peer.speaks = true;
    const silentOfUs = hb.silentMs?.[this.#self];
    if (silentOfUs !== undefined) peer.heardUsMs = Math.max(peer.heardUsMs, nowMs - silentOfUs);
    else if (!online && peer.speaks) peer.heardUsMs = nowMs;
    if (!peer.up[arrivedOn]) changes.push(...this.#setPath(peer, arrivedOn, true));
    if (peer.quiet && (this.#quietMs === undefined || nowMs - this.#mutualMs(peer) <= this.#quietMs)) {
      peer.quiet = false;
      changes.push({ kind: 'quiet', server: peer.name, quiet: false });
    }
    return { changes };
  }

  /** Marks down every path silent for longer than the timeout, and quiet every online peer silent for the lease. */
  tick(nowMs: number): Change[] {
    const changes: Change[] = [];
    for (const peer of this.#peers.values()) {
      const quietMs = this.#quietMs;
      if (quietMs !== undefined && peer.up.some(Boolean) && !peer.quiet && nowMs - this.#mutualMs(peer) > quietMs) {
        peer.quiet = true;
        changes.push({ kind: 'quiet', server: peer.name, quiet: true });
      }
      peer.up.forEach((up, i) => {
        if (up && nowMs - (peer.lastHeardMs[i] ?? 0) > this.#timeoutMs) changes.push(...this.#setPath(peer, i, false));
      });
      if (!peer.up.some(Boolean)) peer.quiet = false;
    }
    return changes;
  }

  /** When the next path times out or the next peer becomes quiet, if nothing is heard before: when to tick next. */
  nextDeadlineMs(): number | undefined {
    let next: number | undefined;
    const earliest = (at: number): void => {
      if (next === undefined || at < next) next = at;
    };
    for (const peer of this.#peers.values()) {
      peer.up.forEach((up, i) => {
        if (up) earliest((peer.lastHeardMs[i] ?? 0) + this.#timeoutMs + 1);
      });
      if (this.#quietMs !== undefined && peer.up.some(Boolean) && !peer.quiet) earliest(this.#mutualMs(peer) + this.#quietMs + 1);
    }
    return next;
  }

  #mutualMs(peer: Peer): number {
    return mutualHeardMs(Math.max(...peer.lastHeardMs), peer.heardUsMs, this.#intervalMs);
  }

  #setPath(peer: Peer, i: number, up: boolean): Change[] {
    const wasOnline = peer.up.some(Boolean);
    peer.up[i] = up;
    const address = peer.addresses[i] ?? '';
    const changes: Change[] = [{ kind: 'path', server: peer.name, pathIndex: i, address, state: up ? 'up' : 'down' }];
    const isOnline = peer.up.some(Boolean);
    if (wasOnline !== isOnline) changes.push({ kind: 'server', server: peer.name, state: isOnline ? 'online' : 'offline' });
    // Offline here: what it said of this server is stale by the time it is heard again.
    if (!isOnline) peer.heardUsMs = 0;
    const upPaths = peer.up.flatMap((u, j) => (u ? [j] : []));
    const only = upPaths[0];
    if (!up && peer.addresses.length > 1 && upPaths.length === 1 && only !== undefined) {
      changes.push({ kind: 'single-path', server: peer.name, pathIndex: only, address: peer.addresses[only] ?? '' });
    }
    return changes;
  }

  /**
   * How long since each peer online here was last heard (ms), for this server's heartbeats. A
   * peer offline here is left out: what it last knew stays its last word, and a silence of a
   * whole outage never reaches it on its first heartbeat back.
   */
  silences(nowMs: number): Record<string, number> {
    const out: Record<string, number> = {};
    for (const p of this.#peers.values()) {
      if (p.up.some(Boolean)) out[p.name] = Math.min(MAX_SILENCE_MS, Math.max(0, nowMs - Math.max(...p.lastHeardMs)));
    }
    return out;
  }

  /** The servers this table hears now (at least one path up). */
  heard(): string[] {
    return [...this.#peers.values()].filter((p) => p.up.some(Boolean)).map((p) => p.name);
  }

  view(): PeerView[] {
    return [...this.#peers.values()].map((p) => ({
      name: p.name,
      state: p.up.some(Boolean) ? 'online' : 'offline',
      incarnation: p.incarnation,
      reportedState: p.reportedState,
      hears: [...p.hears],
      heardUsMs: p.heardUsMs,
      paths: p.addresses.map((address, i) => ({ address, state: p.up[i] ? 'up' : 'down', lastHeardMs: p.lastHeardMs[i] ?? 0 })),
    }));
  }
}
