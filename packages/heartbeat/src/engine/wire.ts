/**
 * What a heartbeat datagram is on the wire: a SignedHeartbeat holding the encoded Heartbeat and
 * its HMAC-SHA256 under the cluster key. Opening one never throws: bad input is a reason.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { decodeHeartbeat, decodeSignedHeartbeat, encodeHeartbeat, encodeSignedHeartbeat, type tandem } from '@tandem/protocol';

export type HeartbeatInit = tandem.v1.Heartbeat.$Properties;
export type Heartbeat = tandem.v1.Heartbeat;

/** Why a datagram was dropped before it reached the peer table. */
export type WireDrop = 'undecodable' | 'bad-mac' | 'foreign-cluster';

export type Opened = { ok: true; heartbeat: Heartbeat } | { ok: false; reason: WireDrop };

export function sealHeartbeat(heartbeat: HeartbeatInit, key: Uint8Array): Buffer {
  const payload = encodeHeartbeat(heartbeat);
  const mac = createHmac('sha256', key).update(payload).digest();
  return Buffer.from(encodeSignedHeartbeat({ payload, mac }));
}

export function openHeartbeat(datagram: Uint8Array, key: Uint8Array, cluster: string): Opened {
  const signed = decodeSignedHeartbeat(datagram);
  if (!signed.ok) return { ok: false, reason: 'undecodable' };
  const { payload, mac } = signed.message;
  const expected = createHmac('sha256', key).update(payload).digest();
  if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) return { ok: false, reason: 'bad-mac' };
  const decoded = decodeHeartbeat(payload);
  if (!decoded.ok) return { ok: false, reason: 'undecodable' };
  if (decoded.message.cluster !== cluster) return { ok: false, reason: 'foreign-cluster' };
  return { ok: true, heartbeat: decoded.message };
}

export interface HeartbeatKey {
  key: Buffer;
  /** false when no secret is configured: the key is derived from the (public) cluster name */
  authenticated: boolean;
}

/**
 * The key heartbeats are signed with: `file:/path` → the file's bytes, any other value → the
 * string itself; without a secret, a key derived from the cluster name (integrity against
 * stray traffic and other clusters, no authentication).
 */
export function heartbeatKey(secret: string | undefined, cluster: string, readFile: (path: string) => Buffer): HeartbeatKey {
  if (secret === undefined) {
    return { key: createHash('sha256').update(`tandem-heartbeat:${cluster}`).digest(), authenticated: false };
  }
  if (secret.startsWith('file:')) return { key: readFile(secret.slice('file:'.length)), authenticated: true };
  return { key: Buffer.from(secret, 'utf8'), authenticated: true };
}
