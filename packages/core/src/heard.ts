/**
 * When this server and a peer last heard each other (a one-way loss, docs/partition.md): the older
 * of this server's last heartbeat from the peer and the peer's last from this server, as the
 * peer's heartbeats say (`heardUsMs`, this server's clock; 0: not known, and this server's own
 * hearing counts alone). The peer's word comes with its next heartbeat, up to an interval after it
 * heard this server: it counts an interval later, or a peer that hears this server on time would
 * pass for deaf.
 */
export function mutualHeardMs(lastHeardMs: number, heardUsMs: number, intervalMs: number): number {
  return heardUsMs > 0 ? Math.min(lastHeardMs, heardUsMs + intervalMs) : lastHeardMs;
}
