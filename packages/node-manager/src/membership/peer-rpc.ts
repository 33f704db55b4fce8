/**
 * Request/reply between node managers over TCP with CURVE: a ROUTER bound on this server's
 * interconnect, one DEALER per peer. The frames are @tandem/protocol's Request and Reply, as on
 * the local ipc sockets. Core's RpcServer and RpcClient create their sockets themselves without
 * CURVE options, so this is their minimal counterpart with sockets made by the caller.
 */
import { randomUUID } from 'node:crypto';
import * as zmq from 'zeromq';
import {
  PROTOCOL_REVISION,
  decodeReply,
  decodeRequest,
  encodeReply,
  encodeRequest,
  type Reply,
  type ReplyInit,
  type RequestInit,
} from '@tandem/protocol';
import { TandemError, errorFromWire, errorToWire, toTandemError, type Logger, type RpcHandler } from '@tandem/core';

type RequestBody = Omit<RequestInit, 'id' | 'deadlineMs' | 'revision' | 'origin'>;

/** One send in flight per socket (zeromq refuses concurrent sends). */
function sendQueue(socket: zmq.Router | zmq.Dealer): (frames: (Buffer | Uint8Array | string)[]) => Promise<void> {
  let tail: Promise<void> = Promise.resolve();
  return (frames) => {
    const next = tail.then(() => socket.send(frames));
    tail = next.catch(() => undefined);
    return next;
  };
}

export class PeerServer {
  readonly #router: zmq.Router;
  readonly #send: ReturnType<typeof sendQueue>;
  readonly #handler: RpcHandler;
  readonly #log: Logger;

  constructor(router: zmq.Router, handler: RpcHandler, log: Logger) {
    this.#router = router;
    this.#send = sendQueue(router);
    this.#handler = handler;
    this.#log = log;
  }

  async bind(endpoint: string): Promise<void> {
    await this.#router.bind(endpoint);
    void this.#loop();
  }

  close(): void {
    this.#router.close();
  }

  async #loop(): Promise<void> {
    try {
      for await (const [identity, ...body] of this.#router) {
        if (identity) void this.#serve(identity, body);
      }
    } catch (err) {
      if (!this.#router.closed) this.#log.error('node manager link: receive loop ended', { error: String(err) });
    }
  }

  async #serve(identity: Buffer, body: Buffer[]): Promise<void> {
    const decoded = body.length === 1 ? decodeRequest(body[0]) : { ok: false as const, reason: `expected 1 frame, got ${body.length}` };
    let reply: ReplyInit;
    if (!decoded.ok) {
      reply = { error: errorToWire(new TandemError('BAD_REQUEST', decoded.reason)) };
    } else if (decoded.message.revision !== PROTOCOL_REVISION) {
      const e = new TandemError(
        'PROTOCOL_MISMATCH',
        `protocol revision ${decoded.message.revision} is not ${PROTOCOL_REVISION}: upgrade both sides`,
      );
      reply = { id: decoded.message.id, error: errorToWire(e) };
    } else {
      try {
        reply = { id: decoded.message.id, ...(await this.#handler(decoded.message)) };
      } catch (err) {
        reply = { id: decoded.message.id, error: errorToWire(toTandemError(err)) };
      }
    }
    try {
      await this.#send([identity, encodeReply(reply)]);
    } catch (err) {
      if (!this.#router.closed) this.#log.warn('node manager link: reply not sent', { error: String(err) });
    }
  }
}

/** Many requests in flight to one peer, each with its own timeout; a peer that is not connected fails at once. */
export class PeerClient {
  readonly #dealer: zmq.Dealer;
  readonly #send: ReturnType<typeof sendQueue>;
  readonly #pending = new Map<string, { resolve: (r: Reply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  readonly #name: string;
  readonly #origin: string;

  /** `dealer` is connected by the caller and must have `sendTimeout: 0` and `immediate: true`. */
  constructor(dealer: zmq.Dealer, opts: { name: string; origin: string }) {
    this.#dealer = dealer;
    this.#send = sendQueue(dealer);
    this.#name = opts.name;
    this.#origin = opts.origin;
    void this.#loop();
  }

  async #loop(): Promise<void> {
    try {
      for await (const [frame] of this.#dealer) {
        const decoded = decodeReply(frame);
        const pending = decoded.ok ? this.#pending.get(decoded.message.id) : undefined;
        if (!decoded.ok || !pending) continue; // garbage, or a reply after its caller timed out
        this.#pending.delete(decoded.message.id);
        clearTimeout(pending.timer);
        pending.resolve(decoded.message);
      }
    } catch {
      // socket closed
    }
  }

  call(body: RequestBody, timeoutMs: number): Promise<Reply> {
    const id = randomUUID();
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new TandemError('TIMEOUT', `${this.#name} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      const frame = encodeRequest({ ...body, id, deadlineMs: Date.now() + timeoutMs, origin: this.#origin });
      this.#send([frame]).catch((err: unknown) => {
        clearTimeout(timer);
        this.#pending.delete(id);
        const why = (err as { code?: string }).code === 'EAGAIN' ? 'not connected' : String(err);
        reject(new TandemError('UNAVAILABLE', `cannot send to ${this.#name}: ${why}`));
      });
    }).then((reply) => {
      if (reply.error) throw errorFromWire(reply.error);
      return reply;
    });
  }

  close(): void {
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(new TandemError('UNAVAILABLE', `connection to ${this.#name} closed`));
    }
    this.#pending.clear();
    this.#dealer.close();
  }
}
