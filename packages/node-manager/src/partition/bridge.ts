/**
 * A split that is not a clique (docs/partition.md, "A split that is not a clique"): two servers
 * that no longer hear each other while a third still hears both. Each of the two still counts a
 * majority with the third, so partition resolution alone would keep both (neither takes the
 * other's groups over meanwhile: the third still hears it, see cluster-view.ts). The third
 * server, the bridge, declares the later one in configuration order down, which makes it fence
 * itself. A pure function: the node manager passes what its heartbeat heard and when, and what
 * its peers reported.
 */
import type { PeerView } from '../membership/table.js';

/** Server states in which a server may run groups: only such a pair can run a group twice. */
const RUNNING = new Set(['online', 'suspended']);

export interface BridgeInput {
  /** every server, in configuration order */
  servers: readonly string[];
  nowMs: number;
  quorumLeaseMs: number;
  intervalMs: number;
  /** when this server's heartbeat last heard each peer (0: never), on the clock of nowMs */
  heardAtMs: ReadonlyMap<string, number>;
  /** each peer's incarnation as this server's heartbeat knows it (0: not known) */
  incarnations: ReadonlyMap<string, number>;
  /** what the peers' node managers reported; a peer's lastHeardMs is when its report came */
  peers: readonly PeerView[];
}

/** A server the bridge declares down, and why. */
export interface SplitLoser {
  server: string;
  incarnation: number;
  /** the server it can no longer hear, or that can no longer hear it; earlier in configuration order */
  keeps: string;
  reason: string;
}

/**
 * The servers to declare down. For two peers this server heard within the quorum lease that run
 * groups and answer, where one reports it has not heard the other for the quorum lease, and this
 * server heard that other one later than that by more than the lease and half an interval (so it
 * was alive and talking here while the first had long lost it: not a server that died, seen a
 * heartbeat apart), the later of the two in configuration order leaves. Pairs are taken from the
 * earliest server on; a server already leaving takes nobody with it. The reports must be of the
 * lives this server hears now.
 */
export function splitLosers(input: BridgeInput): SplitLoser[] {
  const { nowMs, quorumLeaseMs, intervalMs } = input;
  const rank = new Map(input.servers.map((s, i) => [s, i]));
  const heardAt = (s: string): number => input.heardAtMs.get(s) ?? 0;
  const candidates = input.peers
    .filter((p) => {
      const life = input.incarnations.get(p.server) ?? 0;
      const r = p.reported;
      const recent = heardAt(p.server) > 0 && nowMs - heardAt(p.server) <= quorumLeaseMs;
      return rank.has(p.server) && recent && p.reach === 'reachable' && life > 0 && r?.incarnation === life && RUNNING.has(r.state);
    })
    .sort((a, b) => rank.get(a.server)! - rank.get(b.server)!);
  /** How much later than `by` last heard `other` this server heard it, if `by` reports it lost. */
  const heardSince = (by: PeerView, other: PeerView): number | undefined => {
    const l = by.reported!.lost.find((x) => x.server === other.server);
    return l === undefined ? undefined : heardAt(other.server) - (by.lastHeardMs - l.silentMs);
  };
  const enough = quorumLeaseMs + intervalMs / 2;
  const losers = new Map<string, SplitLoser>();
  candidates.forEach((a, i) => {
    if (losers.has(a.server)) return;
    for (const b of candidates.slice(i + 1)) {
      if (losers.has(b.server)) continue;
      const bLater = heardSince(a, b);
      const aLater = heardSince(b, a);
      let how: string;
      if (bLater !== undefined && bLater > enough)
        how = `${a.server} lost ${b.server}, heard here ${Math.round(bLater)} ms after ${a.server} last heard it`;
      else if (aLater !== undefined && aLater > enough)
        how = `${b.server} lost ${a.server}, heard here ${Math.round(aLater)} ms after ${b.server} last heard it`;
      else continue;
      losers.set(b.server, {
        server: b.server,
        incarnation: b.reported!.incarnation,
        keeps: a.server,
        reason: `${a.server} and ${b.server} no longer hear each other (${how}) while this server hears both: ${b.server}, the later in configuration order, is declared down`,
      });
    }
  });
  return [...losers.values()];
}
