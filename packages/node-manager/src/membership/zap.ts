/**
 * The ZAP handler (ZeroMQ RFC 27) of the node managers' TCP link. Without it, CURVE accepts any
 * client that knows this server's public key; with it, only the configured peers get in.
 * libzmq asks it over `inproc://zeromq.zap.01` in the context of the socket being connected to.
 */
import * as zmq from 'zeromq';
import type { Logger } from '@tandem/core';
import { z85Encode } from './z85.js';

export const ZAP_ENDPOINT = 'inproc://zeromq.zap.01';
const ZAP_VERSION = '1.0';
/** Refusals are logged at most this often: a refused client retries at every reconnect. */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

export class ZapHandler {
  readonly #router: zmq.Router;
  /** Z85 public key → the server it belongs to */
  readonly #allowed: Map<string, string>;
  readonly #log: Logger;
  #refused = 0;
  #lastLogMs = 0;

  constructor(context: zmq.Context, allowed: Map<string, string>, log: Logger) {
    this.#router = new zmq.Router({ context, linger: 0 });
    this.#allowed = allowed;
    this.#log = log;
  }

  /** How many connection attempts were refused since the start. */
  get refused(): number {
    return this.#refused;
  }

  async bind(): Promise<void> {
    await this.#router.bind(ZAP_ENDPOINT);
    void this.#loop();
  }

  close(): void {
    this.#router.close();
  }

  async #loop(): Promise<void> {
    try {
      // One request at a time: libzmq waits for each answer before the handshake goes on.
      for await (const [routingId, delimiter, version, requestId, , address, , mechanism, credential] of this.#router) {
        if (!routingId || !delimiter || !requestId) continue;
        const verdict = this.#judge(version?.toString(), mechanism?.toString(), credential, address?.toString() ?? '?');
        await this.#router.send([routingId, delimiter, ZAP_VERSION, requestId, verdict.status, verdict.text, verdict.userId, '']);
      }
    } catch (err) {
      if (!this.#router.closed) this.#log.error('ZAP handler stopped', { error: String(err) });
    }
  }

  #judge(
    version: string | undefined,
    mechanism: string | undefined,
    credential: Buffer | undefined,
    address: string,
  ): { status: string; text: string; userId: string } {
    if (version !== ZAP_VERSION) return this.#refuse(address, `ZAP version ${version ?? 'missing'}`);
    if (mechanism !== 'CURVE') return this.#refuse(address, `mechanism ${mechanism ?? 'missing'} is not CURVE`);
    if (credential?.length !== 32) return this.#refuse(address, 'no CURVE public key');
    const key = z85Encode(credential);
    const server = this.#allowed.get(key);
    if (!server) return this.#refuse(address, `public key ${key} is not a configured peer's`);
    return { status: '200', text: 'OK', userId: server };
  }

  #refuse(address: string, reason: string): { status: string; text: string; userId: string } {
    this.#refused++;
    const now = Date.now();
    if (now - this.#lastLogMs >= REFUSAL_LOG_INTERVAL_MS) {
      this.#lastLogMs = now;
      this.#log.warn(`refused a node manager connection from ${address}: ${reason}`, { refused: this.#refused });
    }
    return { status: '400', text: reason, userId: '' };
  }
}
