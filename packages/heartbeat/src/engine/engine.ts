/**
 * The heartbeat engine: one UDP socket per interconnect, a signed heartbeat to every peer on
 * each path every interval, and received datagrams checked and fed to the PeerTable. It has no
 * daemon around it, so tests run several in one process.
 */
import { createSocket, type Socket } from 'node:dgram';
import { TandemError } from '@tandem/core';
import { PeerTable, type Change, type PeerView, type TableDrop } from './peer-table.js';
import { openHeartbeat, sealHeartbeat, type WireDrop } from './wire.js';

export type DropReason = WireDrop | TableDrop;

export interface EnginePeer {
  name: string;
  /** its interconnect addresses, in path order */
  interconnects: string[];
  port: number;
}

export interface EngineLog {
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
}

export interface EngineOptions {
  cluster: string;
  server: string;
  incarnation: number;
  /** this server's interconnect addresses, in path order (= priority) */
  interconnects: string[];
  port: number;
  /** the other servers; none: heartbeats go to this server's own addresses, to exercise every path */
  peers: EnginePeer[];
  intervalMs: number;
  timeoutMs: number;
  /** the quorum lease: a peer silent this long is reported quiet (default: the timeout) */
  quietMs?: number;
  key: Uint8Array;
  /** this server's state as carried in its heartbeats */
  state: () => string;
  onChanges: (changes: Change[]) => void;
  log: EngineLog;
  now?: () => number;
}

export class HeartbeatEngine {
  readonly #o: EngineOptions;
  readonly #now: () => number;
  readonly #table: PeerTable;
  /** where heartbeats go on each path: the peers, or this server itself when alone */
  readonly #targets: EnginePeer[];
  readonly #sockets: (Socket | undefined)[] = [];
  readonly #drops: Record<DropReason, number> = {
    undecodable: 0,
    'bad-mac': 0,
    'foreign-cluster': 0,
    'unknown-server': 0,
    'wrong-path': 0,
    replayed: 0,
    'stale-incarnation': 0,
  };
  #dropsLogged = 0;
  #sendErrors = 0;
  #seq = 0;
  #sendTimer: NodeJS.Timeout | undefined;
  /** the next silence check: at the exact moment a path would time out or a peer would become quiet */
  #checkTimer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: EngineOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    const alone = options.peers.length === 0;
    this.#targets = alone ? [{ name: options.server, interconnects: options.interconnects, port: options.port }] : options.peers;
    this.#table = new PeerTable(
      options.server,
      this.#targets.map((p) => ({ name: p.name, addresses: p.interconnects })),
      { intervalMs: options.intervalMs, timeoutMs: options.timeoutMs, quietMs: options.quietMs },
    );
  }

  /** Binds one socket per interconnect; fails only if none can be bound. */
  async start(): Promise<void> {
    const failures: string[] = [];
    for (const [i, address] of this.#o.interconnects.entries()) {
      try {
        this.#sockets[i] = await this.#bind(i, address);
      } catch (err) {
        failures.push(`${address}:${this.#o.port}: ${(err as Error).message}`);
        this.#o.log.warn(`interconnect ${i} (${address}) cannot be used: heartbeats on it are off`, { error: (err as Error).message });
      }
    }
    if (failures.length === this.#o.interconnects.length) {
      this.stop();
      throw new TandemError('UNAVAILABLE', `no interconnect can be bound for heartbeats: ${failures.join('; ')}`);
    }
    this.#send();
    this.#sendTimer = setInterval(() => this.#send(), this.#o.intervalMs);
    this.#armCheck();
  }

  stop(): void {
    clearInterval(this.#sendTimer);
    this.#stopped = true;
    clearTimeout(this.#checkTimer);
    this.#checkTimer = undefined;
    for (const s of this.#sockets) s?.close();
    this.#sockets.length = 0;
  }

  get drops(): Readonly<Record<DropReason, number>> {
    return this.#drops;
  }

  get sendErrors(): number {
    return this.#sendErrors;
  }

  /** Per-server liveness as heard: the peers, or this server itself when it is alone. */
  view(): PeerView[] {
    return this.#table.view();
  }

  /** Whether path i has a bound socket on this server. */
  pathBound(i: number): boolean {
    return this.#sockets[i] !== undefined;
  }

  #bind(pathIndex: number, address: string): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const socket = createSocket({ type: 'udp4', reuseAddr: false });
      socket.once('error', reject);
      socket.bind(this.#o.port, address, () => {
        socket.off('error', reject);
        socket.on('error', (err) => this.#o.log.warn(`heartbeat socket on ${address} failed`, { error: err.message }));
        socket.on('message', (datagram) => this.#receive(pathIndex, datagram));
        resolve(socket);
      });
    });
  }

  #send(): void {
    this.#logDrops();
    this.#seq++;
    const hears = this.#table.heard();
    const silentMs = this.#table.silences(this.#now());
    const state = this.#o.state();
    for (const [i, socket] of this.#sockets.entries()) {
      if (!socket) continue;
      const datagram = sealHeartbeat(
        {
          cluster: this.#o.cluster,
          server: this.#o.server,
          incarnation: this.#o.incarnation,
          seq: this.#seq,
          sentAtMs: this.#now(),
          state,
          hears,
          silentMs,
          pathIndex: i,
        },
        this.#o.key,
      );
      for (const target of this.#targets) {
        const address = target.interconnects[i];
        if (address === undefined) continue;
        socket.send(datagram, target.port, address, (err) => {
          if (err) this.#sendErrors++;
        });
      }
    }
  }

  #receive(pathIndex: number, datagram: Buffer): void {
    const opened = openHeartbeat(datagram, this.#o.key, this.#o.cluster);
    if (!opened.ok) {
      this.#drops[opened.reason]++;
      return;
    }
    const { drop, changes } = this.#table.receive(opened.heartbeat, pathIndex, this.#now());
    if (drop) this.#drops[drop]++;
    if (changes.length) this.#o.onChanges(changes);
    this.#armCheck();
  }

  #check(): void {
    const changes = this.#table.tick(this.#now());
    if (changes.length) this.#o.onChanges(changes);
    this.#armCheck();
  }

  /**
   * Sets the check timer to the next deadline, unless one is set: a heartbeat only moves
   * deadlines later, so the pending check runs early at worst and sets the next one itself.
   */
  #armCheck(): void {
    if (this.#checkTimer || this.#stopped) return;
    const next = this.#table.nextDeadlineMs();
    if (next === undefined) return;
    this.#checkTimer = setTimeout(
      () => {
        this.#checkTimer = undefined;
        this.#check();
      },
      Math.max(0, next - this.#now()),
    );
  }

  /** Once per interval at most: bad traffic must not flood the log. */
  #logDrops(): void {
    const dropped = Object.values(this.#drops).reduce((a, b) => a + b, 0);
    if (dropped > this.#dropsLogged) {
      this.#o.log.warn(`dropped ${dropped - this.#dropsLogged} heartbeat datagram(s) since the last interval`, { ...this.#drops });
      this.#dropsLogged = dropped;
    }
  }
}
