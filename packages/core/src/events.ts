/**
 * Events on PUB/SUB. Each daemon binds a Publisher on `<daemon>.events`; frames are
 * [kind, Event]. Events are hints: the first ones after a subscriber connects may be lost, so
 * a subscriber that needs the truth asks over RPC.
 */
import * as zmq from 'zeromq';
import { decodeEvent, encodeEvent, type Event } from '@tandem/protocol';

export class EventPublisher {
  readonly #pub = new zmq.Publisher({ linger: 0, sendHighWaterMark: 1000 });
  readonly #server: string;
  readonly #daemon: string;
  #seq = 0;
  #tail: Promise<void> = Promise.resolve();

  constructor(server: string, daemon: string) {
    this.#server = server;
    this.#daemon = daemon;
  }

  async bind(endpoint: string): Promise<void> {
    await this.#pub.bind(endpoint);
  }

  publish(kind: string, subject: string, state: string, message = '', details: Record<string, string> = {}): void {
    const frame = encodeEvent({
      seq: ++this.#seq,
      timeMs: Date.now(),
      server: this.#server,
      daemon: this.#daemon,
      kind,
      subject,
      state,
      message,
      details,
    });
    this.#tail = this.#tail.then(() => this.#pub.send([kind, frame])).catch(() => undefined);
  }

  close(): void {
    this.#pub.close();
  }
}

export class EventSubscriber {
  readonly #sub = new zmq.Subscriber({ linger: 0 });

  constructor(endpoints: string[], kinds: string[] = []) {
    for (const e of endpoints) this.#sub.connect(e);
    if (kinds.length === 0) this.#sub.subscribe();
    else for (const k of kinds) this.#sub.subscribe(k);
  }

  /** Calls `onEvent` for each event that decodes; undecodable frames are dropped. */
  async run(onEvent: (e: Event) => void): Promise<void> {
    try {
      for await (const [, frame] of this.#sub) {
        const d = decodeEvent(frame);
        if (d.ok) onEvent(d.message);
      }
    } catch {
      // closed
    }
  }

  close(): void {
    this.#sub.close();
  }
}
