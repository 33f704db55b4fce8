/**
 * @module @tandem/protocol
 * The only code that encodes or decodes Tandem frames. The message classes are generated from
 * proto/tandem/v1/*.proto by protobufjs-cli (see scripts/gen.mjs); this module adds the
 * envelope helpers every daemon uses, and decoders that never throw.
 */
import './numbers.js';
import { tandem } from '../gen/tandem.js';

export { tandem };
export const v1 = tandem.v1;
export type Request = tandem.v1.Request;
export type Reply = tandem.v1.Reply;
export type RequestInit = tandem.v1.Request.$Properties;
export type ReplyInit = tandem.v1.Reply.$Properties;
export type Liveness = tandem.v1.Liveness;
export type GuardReply = tandem.v1.GuardReply;
export type Event = tandem.v1.Event;
export type Alert = tandem.v1.Alert;
export type ClusterStatus = tandem.v1.ClusterStatus;
export type GroupStatus = tandem.v1.GroupStatus;
export type ResourceStatus = tandem.v1.ResourceStatus;
export type MonitorStatus = tandem.v1.MonitorStatus;
export type ServerStatus = tandem.v1.ServerStatus;
export type DaemonStatus = tandem.v1.DaemonStatus;

/** The protocol revision this build speaks. */
export const PROTOCOL_REVISION = tandem.v1.ProtocolRevision.PROTOCOL_REVISION_CURRENT;

/** The request bodies, as named by the `body` oneof of Request. */
export type RequestBody = NonNullable<tandem.v1.Request['body']>;
export type ReplyBody = NonNullable<tandem.v1.Reply['body']>;

/** Error codes as short names (`NOT_FOUND`), matching @tandem/core's TandemError codes. */
export const ERROR_CODES = [
  'NOT_FOUND',
  'REFUSED',
  'TIMEOUT',
  'BAD_REQUEST',
  'CONFLICT',
  'UNAVAILABLE',
  'INTERNAL',
  'PROTOCOL_MISMATCH',
] as const;
export type ErrorCodeName = (typeof ERROR_CODES)[number];

export function errorCodeToWire(code: ErrorCodeName): tandem.v1.ErrorCode {
  return tandem.v1.ErrorCode[`ERROR_CODE_${code}`];
}

export function errorCodeFromWire(code: tandem.v1.ErrorCode | null | undefined): ErrorCodeName {
  const name = tandem.v1.ErrorCode[code ?? 0] as string | undefined;
  const short = name?.replace(/^ERROR_CODE_/, '');
  return (ERROR_CODES as readonly string[]).includes(short ?? '') ? (short as ErrorCodeName) : 'INTERNAL';
}

export type Decoded<T> = { ok: true; message: T } | { ok: false; reason: string };

/** Decodes a frame into a message without throwing: bad input is a value, not an exception. */
function safeDecode<T>(decode: (bytes: Uint8Array) => T, frame: Uint8Array | undefined, what: string): Decoded<T> {
  if (frame === undefined) return { ok: false, reason: `${what}: empty message` };
  try {
    return { ok: true, message: decode(frame) };
  } catch (err) {
    return { ok: false, reason: `${what} does not decode: ${(err as Error).message}` };
  }
}

export const encodeRequest = (r: RequestInit): Uint8Array => tandem.v1.Request.encode({ revision: PROTOCOL_REVISION, ...r }).finish();
export const decodeRequest = (f: Uint8Array | undefined): Decoded<Request> => safeDecode((b) => tandem.v1.Request.decode(b), f, 'request');
export const encodeReply = (r: ReplyInit): Uint8Array => tandem.v1.Reply.encode({ revision: PROTOCOL_REVISION, ...r }).finish();
export const decodeReply = (f: Uint8Array | undefined): Decoded<Reply> => safeDecode((b) => tandem.v1.Reply.decode(b), f, 'reply');
export const encodeLiveness = (m: tandem.v1.Liveness.$Properties): Uint8Array =>
  tandem.v1.Liveness.encode({ revision: PROTOCOL_REVISION, ...m }).finish();
export const decodeLiveness = (f: Uint8Array | undefined): Decoded<Liveness> =>
  safeDecode((b) => tandem.v1.Liveness.decode(b), f, 'liveness message');
export const encodeGuardReply = (m: tandem.v1.GuardReply.$Properties): Uint8Array =>
  tandem.v1.GuardReply.encode({ revision: PROTOCOL_REVISION, ...m }).finish();
export const decodeGuardReply = (f: Uint8Array | undefined): Decoded<GuardReply> =>
  safeDecode((b) => tandem.v1.GuardReply.decode(b), f, 'guard reply');
export const encodeEvent = (m: tandem.v1.Event.$Properties): Uint8Array => tandem.v1.Event.encode(m).finish();
export const decodeEvent = (f: Uint8Array | undefined): Decoded<Event> => safeDecode((b) => tandem.v1.Event.decode(b), f, 'event');

export const encodeHeartbeat = (m: tandem.v1.Heartbeat.$Properties): Uint8Array => tandem.v1.Heartbeat.encode(m).finish();
export const decodeHeartbeat = (f: Uint8Array | undefined): Decoded<tandem.v1.Heartbeat> =>
  safeDecode((b) => tandem.v1.Heartbeat.decode(b), f, 'heartbeat');
export const encodeSignedHeartbeat = (m: tandem.v1.SignedHeartbeat.$Properties): Uint8Array => tandem.v1.SignedHeartbeat.encode(m).finish();
export const decodeSignedHeartbeat = (f: Uint8Array | undefined): Decoded<tandem.v1.SignedHeartbeat> =>
  safeDecode((b) => tandem.v1.SignedHeartbeat.decode(b), f, 'signed heartbeat');

/** Plain JSON-friendly objects (enums as names, 64-bit numbers as numbers, defaults included). */
export function clusterStatusToJson(status: ClusterStatus): Record<string, unknown> {
  return tandem.v1.ClusterStatus.toObject(status, { defaults: true, arrays: true, enums: String });
}
export function alertToJson(alert: Alert): Record<string, unknown> {
  return tandem.v1.Alert.toObject(alert, { defaults: true, objects: true });
}
