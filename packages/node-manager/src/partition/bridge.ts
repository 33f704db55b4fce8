/**
 * A split that is not a clique (docs/partition.md, "A split that is not a clique"): two servers
 * that no longer hear each other while a third still hears both. Each of the two still counts a
 * majority with the third, so partition resolution alone would keep both; the third server, the
 * bridge, sees it in their reports and declares the later one in configuration order down, which
 * makes it fence itself. A pure function: the node manager passes what it hears and what its peers
 * reported.
 */
import type { PeerView } from '../membership/table.js';

/** Server states in which a server may run groups: only such a pair can run a group twice. */
const RUNNING = new Set(['online', 'suspended']);

export interface BridgeInput {
  /** every server, in configuration order */
  servers: readonly string[];
  /** the peers this server heard within the quorum lease */
  recent: Iterable<string>;
  /** each peer's incarnation as this server's heartbeat knows it (0: not known) */
  incarnations: ReadonlyMap<string, number>;
  /** what the peers' node managers reported */
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
 * The servers to declare down: for every two peers this server heard within the quorum lease that
 * run groups and answer, where one reports the other lost (silent for its quorum lease, or
 * declared down in its present life), the later of the two in configuration order, taken from the
 * earliest pair on (a server already leaving takes nobody with it). The reports must be of the
 * lives this server hears now.
 */
export function splitLosers(input: BridgeInput): SplitLoser[] {
  const recent = new Set(input.recent);
  const rank = new Map(input.servers.map((s, i) => [s, i]));
  const candidates = input.peers
    .filter((p) => {
      const life = input.incarnations.get(p.server) ?? 0;
      const r = p.reported;
      return (
        rank.has(p.server) && recent.has(p.server) && p.reach === 'reachable' && life > 0 && r?.incarnation === life && RUNNING.has(r.state)
      );
    })
    .sort((a, b) => rank.get(a.server)! - rank.get(b.server)!);
  const lost = (by: PeerView, other: PeerView): boolean => {
    const r = by.reported!;
    return r.quiet.includes(other.server) || r.down.some((d) => d.server === other.server && d.incarnation === other.reported!.incarnation);
  };
  const losers = new Map<string, SplitLoser>();
  // Earlier servers first: one that leaves costs no later server its place.
  candidates.forEach((a, i) => {
    if (losers.has(a.server)) return;
    for (const b of candidates.slice(i + 1)) {
      if (losers.has(b.server)) continue;
      const aLostB = lost(a, b);
      if (!aLostB && !lost(b, a)) continue;
      const how = aLostB ? `${a.server} lost ${b.server}` : `${b.server} lost ${a.server}`;
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
