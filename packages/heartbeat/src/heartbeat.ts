/**
 * The heartbeat daemon (tandem-hb): runs the heartbeat engine on this server's interconnects,
 * turns path changes into events and alerts, and answers `status` with every server's paths.
 */
import { readFileSync } from 'node:fs';
import { TandemError, type DaemonContext, type DaemonImpl } from '@tandem/core';
import type { Request, tandem } from '@tandem/protocol';
import { HeartbeatEngine } from './engine/engine.js';
import type { Change, PeerView } from './engine/peer-table.js';
import { heartbeatKey } from './engine/wire.js';
import { nextIncarnation } from './incarnation.js';

type ServerStatus = tandem.v1.ServerStatus.$Properties;

export class HeartbeatDaemon implements DaemonImpl {
  readonly #ctx: DaemonContext;
  #engine: HeartbeatEngine | undefined;
  #incarnation = 0;

  constructor(ctx: DaemonContext) {
    this.#ctx = ctx;
  }

  async start(): Promise<void> {
    const { config, server, log } = this.#ctx;
    const c = config.cluster;
    const { key, authenticated } = heartbeatKey(c.secret, c.name, (path) => {
      try {
        return readFileSync(path);
      } catch (err) {
        throw new TandemError('NOT_FOUND', `cluster.secret: cannot read ${path}: ${(err as Error).message}`);
      }
    });
    if (!authenticated)
      log.warn('cluster.secret is not set: heartbeats are signed with a key derived from the cluster name and are not authenticated');
    this.#incarnation = nextIncarnation(this.#ctx.paths.state);
    this.#engine = new HeartbeatEngine({
      cluster: c.name,
      server,
      incarnation: this.#incarnation,
      interconnects: this.#local().interconnects,
      port: c.heartbeat.port,
      peers: config.servers
        .filter((s) => s.name !== server)
        .map((s) => ({ name: s.name, interconnects: s.interconnects, port: c.heartbeat.port })),
      intervalMs: c.heartbeat.intervalMs,
      timeoutMs: c.heartbeat.timeoutMs,
      quietMs: c.networkPartition.quorumLeaseMs,
      key,
      state: () => 'online',
      onChanges: (changes) => this.#onChanges(changes),
      log,
    });
    await this.#engine.start();
    log.info('heartbeats running', {
      incarnation: this.#incarnation,
      interconnects: this.#local().interconnects.join(','),
      port: c.heartbeat.port,
    });
  }

  async handle(request: Request): Promise<{ servers: { servers: ServerStatus[] } }> {
    if (request.body !== 'status') throw new TandemError('BAD_REQUEST', `tandem-hb does not serve ${request.body}`);
    return { servers: { servers: this.status() } };
  }

  async stop(): Promise<void> {
    this.#engine?.stop();
  }

  /** Every configured server, in configuration order. */
  status(): ServerStatus[] {
    const views = new Map((this.#engine?.view() ?? []).map((v) => [v.name, v]));
    return this.#ctx.config.servers.map((s) => {
      const view = views.get(s.name);
      if (s.name !== this.#ctx.server) return peerStatus(s.name, s.interconnects, view);
      // This server: online by definition. Alone, its paths are tested by its own heartbeats;
      // with peers, a path of ours is up when its socket is bound.
      const paths =
        view?.paths ??
        s.interconnects.map((address, i) => ({ address, state: this.#engine?.pathBound(i) ? 'up' : 'down', lastHeardMs: 0 }));
      return { name: s.name, state: 'online', local: true, incarnation: this.#incarnation, paths };
    });
  }

  #onChanges(changes: Change[]): void {
    const { alerts, events, log } = this.#ctx;
    for (const ch of changes) {
      switch (ch.kind) {
        case 'path': {
          const message = `interconnect path ${ch.pathIndex} to ${ch.server} (${ch.address}) is ${ch.state}`;
          const details = { server: ch.server, path: String(ch.pathIndex), address: ch.address };
          events.publish('path', ch.server, ch.state, message, details);
          alerts.raise(ch.state === 'up' ? 'TND-HB-0302' : 'TND-HB-0301', message, details);
          if (ch.state === 'up') log.info(message, details);
          else log.warn(message, details);
          break;
        }
        case 'server': {
          const message = `${ch.server} is ${ch.state === 'online' ? 'heard' : 'not heard on any path'}`;
          // nm acts on this at once (membership, partition resolution) rather than at its next poll.
          events.publish('server', ch.server, ch.state, message);
          log.info(message, { server: ch.server });
          break;
        }
        case 'incarnation':
          log.warn(`${ch.server} restarted: incarnation ${ch.previous} → ${ch.incarnation}`, { server: ch.server });
          break;
        case 'quiet': {
          // Not down yet: nm checks at once whether this side still holds a quorum (DESIGN.md 6.2).
          const message = ch.quiet
            ? `${ch.server} has been silent, or has not heard this server, for the quorum lease`
            : `${ch.server} is heard again`;
          events.publish('server', ch.server, ch.quiet ? 'quiet' : 'online', message);
          log.log(ch.quiet ? 'warn' : 'info', message, { server: ch.server });
          break;
        }
        case 'single-path':
          log.warn(`${ch.server} is reachable on one path only: ${ch.pathIndex} (${ch.address})`, { server: ch.server });
          break;
      }
    }
  }

  #local(): { interconnects: string[] } {
    const local = this.#ctx.config.servers.find((s) => s.name === this.#ctx.server);
    if (!local) throw new TandemError('BAD_REQUEST', `this server "${this.#ctx.server}" is not in servers`);
    return local;
  }
}

function peerStatus(name: string, interconnects: string[], view: PeerView | undefined): ServerStatus {
  const paths = view?.paths ?? interconnects.map((address) => ({ address, state: 'down', lastHeardMs: 0 }));
  return {
    name,
    state: view?.state ?? 'offline',
    local: false,
    incarnation: view?.incarnation ?? 0,
    paths,
    heardUsMs: view?.heardUsMs ?? 0,
  };
}
