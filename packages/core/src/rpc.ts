/**
 * Request/reply over ZeroMQ. A daemon binds an RpcServer (ROUTER); clients use an RpcClient
 * (DEALER, many requests in flight, matched by id) or `callOnce` (a short-lived CLI call).
 * Every request carries a deadline; replies echo the id; failures are typed errors.
 * Bad frames are answered with BAD_REQUEST and never reach a handler.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import * as zmq from 'zeromq';
import {
  PROTOCOL_REVISION,
  decodeReply,
  decodeRequest,
  encodeReply,
  encodeRequest,
  type Reply,
  type ReplyInit,
  type Request,
  type RequestInit,
} from '@tandem/protocol';
import { TandemError, errorFromWire, errorToWire, toTandemError } from './errors.js';
import type { Logger } from './logger.js';

/** A handler answers a decoded request with a reply body, or throws a TandemError. */
export type RpcHandler = (request: Request) => Promise<Omit<ReplyInit, 'id' | 'revision' | 'error'>>;

/** Serialises sends on one socket: zeromq allows one send in flight per socket. */
class SendQueue {
  #tail: Promise<void> = Promise.resolve();
  readonly #socket: zmq.Router | zmq.Dealer;

  constructor(socket: zmq.Router | zmq.Dealer) {
    this.#socket = socket;
  }

  send(frames: (Buffer | Uint8Array)[]): Promise<void> {
    const next = this.#tail.then(() => this.#socket.send(frames));
    this.#tail = next.catch(() => undefined);
    return next;
  }
}

export class RpcServer {
  readonly #router: zmq.Router;
  readonly #queue: SendQueue;
  readonly #endpoint: string;
  readonly #handler: RpcHandler;
  readonly #log: Logger;
  #badFrames = 0;
  #lastBadLogMs = 0;

  readonly #deadlines: boolean;

  /**
   * `router`: a socket made by the caller (say, with CURVE options); by default a plain one.
   * `deadlines: false` stops refusing requests past their deadline: for requests from another
   * server, whose clock may differ from this one's.
   */
  constructor(endpoint: string, handler: RpcHandler, log: Logger, opts: { router?: zmq.Router; deadlines?: boolean } = {}) {
    this.#router = opts.router ?? new zmq.Router({ linger: 0, sendHighWaterMark: 10_000 });
    this.#deadlines = opts.deadlines ?? true;
    this.#queue = new SendQueue(this.#router);
    this.#endpoint = endpoint;
    this.#handler = handler;
    this.#log = log;
  }

  get badFrames(): number {
    return this.#badFrames;
  }

  async bind(): Promise<void> {
    await this.#router.bind(this.#endpoint);
    void this.#loop();
  }

  close(): void {
    this.#router.close();
  }

  async #loop(): Promise<void> {
    try {
      for await (const frames of this.#router) {
        void this.#serve(frames);
      }
    } catch (err) {
      if (!this.#router.closed) this.#log.error('rpc receive loop ended', { endpoint: this.#endpoint, error: String(err) });
    }
  }

  #countBad(reason: string): void {
    this.#badFrames++;
    const now = Date.now();
    if (now - this.#lastBadLogMs > 10_000) {
      this.#lastBadLogMs = now;
      this.#log.warn('bad request frame', { reason, badFrames: this.#badFrames });
    }
  }

  async #serve(frames: Buffer[]): Promise<void> {
    const [identity, ...body] = frames;
    if (!identity) return;
    let reply: ReplyInit;
    if (body.length !== 1) {
      this.#countBad(`expected 1 frame, got ${body.length}`);
      reply = { error: errorToWire(new TandemError('BAD_REQUEST', `a request is one frame, got ${body.length}`)) };
    } else {
      const decoded = decodeRequest(body[0]);
      if (!decoded.ok) {
        this.#countBad(decoded.reason);
        reply = { error: errorToWire(new TandemError('BAD_REQUEST', decoded.reason)) };
      } else {
        reply = await this.#answer(decoded.message);
      }
    }
    let frame: Uint8Array;
    try {
      frame = encodeReply(reply);
    } catch (err) {
      this.#log.error('reply does not encode', { error: String(err) });
      frame = encodeReply({ id: reply.id ?? '', error: errorToWire(new TandemError('INTERNAL', `reply does not encode: ${String(err)}`)) });
    }
    try {
      await this.#queue.send([identity, frame]);
    } catch (err) {
      if (!this.#router.closed) this.#log.warn('rpc reply not sent', { error: String(err) });
    }
  }

  async #answer(request: Request): Promise<ReplyInit> {
    const id = request.id;
    if (request.revision === 0) {
      this.#countBad('request without a protocol revision');
      return { id, error: errorToWire(new TandemError('BAD_REQUEST', 'request without a protocol revision')) };
    }
    if (request.revision !== PROTOCOL_REVISION) {
      return {
        id,
        error: errorToWire(
          new TandemError('PROTOCOL_MISMATCH', `protocol revision ${request.revision} is not ${PROTOCOL_REVISION}: upgrade both sides`),
        ),
      };
    }
    if (!request.body) {
      this.#countBad('request without a body');
      return { id, error: errorToWire(new TandemError('BAD_REQUEST', 'request has no body (unknown method?)')) };
    }
    if (this.#deadlines && request.deadlineMs > 0 && request.deadlineMs < Date.now()) {
      return { id, error: errorToWire(new TandemError('TIMEOUT', `request ${request.body} arrived after its deadline`)) };
    }
    try {
      return { id, ...(await this.#handler(request)) };
    } catch (err) {
      const e = toTandemError(err);
      if (e.code === 'INTERNAL') this.#log.error('request failed', { method: request.body, error: e.message, stack: e.stack });
      return { id, error: errorToWire(e) };
    }
  }
}

export interface CallOptions {
  timeoutMs?: number;
  origin?: string;
}

function unwrap(reply: Reply): Reply {
  if (reply.error) throw errorFromWire(reply.error);
  return reply;
}

function endpointMissing(endpoint: string): boolean {
  return endpoint.startsWith('ipc://') && !existsSync(endpoint.slice('ipc://'.length));
}

/** A long-lived client of one daemon: many requests in flight, each with its own deadline. */
export class RpcClient {
  readonly #dealer: zmq.Dealer;
  readonly #queue: SendQueue;
  readonly #pending = new Map<string, { resolve: (r: Reply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  readonly #endpoint: string;
  readonly #origin: string;
  readonly #name: string;

  /**
   * `dealer`: a socket made by the caller (say, with CURVE options, or `immediate` and
   * `sendTimeout: 0` so that a request to a peer that is not connected fails at once).
   */
  constructor(endpoint: string, opts: { origin: string; name: string; dealer?: zmq.Dealer }) {
    this.#dealer = opts.dealer ?? new zmq.Dealer({ linger: 0, sendHighWaterMark: 10_000 });
    this.#queue = new SendQueue(this.#dealer);
    this.#endpoint = endpoint;
    this.#origin = opts.origin;
    this.#name = opts.name;
    this.#dealer.connect(endpoint);
    void this.#loop();
  }

  async #loop(): Promise<void> {
    try {
      for await (const [frame] of this.#dealer) {
        const decoded = decodeReply(frame);
        if (!decoded.ok) continue;
        const p = this.#pending.get(decoded.message.id);
        if (!p) continue; // a reply after its caller timed out
        this.#pending.delete(decoded.message.id);
        clearTimeout(p.timer);
        p.resolve(decoded.message);
      }
    } catch {
      // socket closed
    }
  }

  /** Sends a request and resolves with the reply; rejects with a TandemError (TIMEOUT, UNAVAILABLE, or the daemon's error). */
  call(body: Omit<RequestInit, 'id' | 'deadlineMs' | 'revision' | 'origin'>, opts: CallOptions = {}): Promise<Reply> {
    const timeoutMs = opts.timeoutMs ?? 5000;
    const id = randomUUID();
    if (endpointMissing(this.#endpoint)) {
      return Promise.reject(new TandemError('UNAVAILABLE', `${this.#name} is not running (no socket ${this.#endpoint})`));
    }
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new TandemError('TIMEOUT', `${this.#name} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      const frame = encodeRequest({ ...body, id, deadlineMs: Date.now() + timeoutMs, origin: opts.origin ?? this.#origin });
      this.#queue.send([frame]).catch((err: unknown) => {
        clearTimeout(timer);
        this.#pending.delete(id);
        const why = (err as { code?: string }).code === 'EAGAIN' ? 'not connected' : String(err);
        // notSent: the request never left, so the caller may send it again elsewhere without running it twice.
        reject(new TandemError('UNAVAILABLE', `cannot send to ${this.#name}: ${why}`, { notSent: 'true' }));
      });
    }).then(unwrap);
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

/**
 * Whether something accepts connections on an ipc endpoint. A daemon killed with SIGKILL leaves
 * its socket file behind; connecting tells "not running" from "slow" at once.
 */
function ipcListening(endpoint: string): Promise<boolean> {
  if (!endpoint.startsWith('ipc://')) return Promise.resolve(true);
  return new Promise((resolve) => {
    const probe = connect(endpoint.slice('ipc://'.length));
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

/** One request on a fresh socket, closed afterwards: for the CLI and tests. */
export async function callOnce(
  endpoint: string,
  body: Omit<RequestInit, 'id' | 'deadlineMs' | 'revision' | 'origin'>,
  opts: CallOptions & { name?: string } = {},
): Promise<Reply> {
  if (!(await ipcListening(endpoint))) {
    throw new TandemError('UNAVAILABLE', `${opts.name ?? endpoint} is not running (nothing listens on ${endpoint})`);
  }
  const client = new RpcClient(endpoint, { origin: opts.origin ?? 'cli', name: opts.name ?? endpoint });
  try {
    return await client.call(body, opts);
  } finally {
    client.close();
  }
}
