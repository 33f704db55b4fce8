/**
 * The membership exchange between node managers (DESIGN.md sections 2, 5, 6.1): every heartbeat
 * interval this node manager tells each peer what it hears and stores what the peer answers; a
 * peer silent for the heartbeat timeout is unreachable. The link is ZeroMQ over TCP with CURVE,
 * and the ZAP handler admits only the configured peers' keys. Only for configurations with more
 * than one server.
 */
import * as zmq from 'zeromq';
import { PM2_NAMES, RpcClient, RpcServer, TandemError, toTandemError, type DaemonContext, type RpcHandler } from '@tandem/core';
import type { tandem } from '@tandem/protocol';
import { loadCurveKeys, type CurveKeys } from './keys.js';
import { MembershipTable, checkMembership, type PeerReach, type PeerView } from './table.js';
import { ZapHandler } from './zap.js';

/** What this server says of itself in each exchange. */
export interface LocalMembership {
  incarnation: number;
  state: string;
  hears: string[];
}

export type MembershipHost = Pick<DaemonContext, 'config' | 'server' | 'paths' | 'log'>;

/** Small reconnect intervals: a peer that comes back must be reachable within a heartbeat timeout or so. */
const RECONNECT_MS = 100;
const RECONNECT_MAX_MS = 1000;
const ZAP_DOMAIN = 'tandem-nm';

interface Peer {
  name: string;
  client: RpcClient;
  /** one exchange in flight per peer: a slow peer does not pile up requests */
  busy: boolean;
  lastReach: PeerReach;
  lastError: string;
}

export function nodeManagerEndpoint(host: MembershipHost, server: string): string {
  const s = host.config.servers.find((x) => x.name === server);
  const address = s?.interconnects[0];
  if (!address) throw new TandemError('NOT_FOUND', `server ${server} has no interconnect address in the configuration`);
  return `tcp://${address}:${host.config.cluster.nodeManagerPort}`;
}

export class Membership {
  readonly #host: MembershipHost;
  readonly #localView: () => Promise<LocalMembership>;
  readonly #zap: ZapHandler;
  readonly #server: RpcServer;
  readonly #peers: Peer[];
  readonly #table: MembershipTable;
  #local: LocalMembership;
  #timer: NodeJS.Timeout | undefined;
  #exchanging = false;

  private constructor(host: MembershipHost, localView: () => Promise<LocalMembership>, keys: CurveKeys, startedMs: number) {
    const { config, server } = host;
    this.#host = host;
    this.#localView = localView;
    const others = config.servers.filter((s) => s.name !== server);
    // A context of its own: the ZAP endpoint is per context, and it answers only for this link.
    const context = new zmq.Context({ blocky: false });
    this.#zap = new ZapHandler(context, new Map(others.map((s) => [s.publicKey!, s.name])), host.log);
    const router = new zmq.Router({
      context,
      linger: 0,
      curveServer: true,
      curvePublicKey: keys.publicKey,
      curveSecretKey: keys.secretKey,
      zapDomain: ZAP_DOMAIN,
    });
    // The peer's deadline comes from the peer's clock: it is not held against this one's.
    this.#server = new RpcServer(nodeManagerEndpoint(host, server), (request) => this.#answer(request), host.log, {
      router,
      deadlines: false,
    });
    this.#peers = others.map((s): Peer => {
      const dealer = new zmq.Dealer({
        context,
        linger: 0,
        immediate: true,
        sendTimeout: 0,
        reconnectInterval: RECONNECT_MS,
        reconnectMaxInterval: RECONNECT_MAX_MS,
        curveServerKey: s.publicKey!,
        curvePublicKey: keys.publicKey,
        curveSecretKey: keys.secretKey,
      });
      const client = new RpcClient(nodeManagerEndpoint(host, s.name), { name: `tandem-nm on ${s.name}`, origin: PM2_NAMES.nm, dealer });
      return { name: s.name, client, busy: false, lastReach: 'unknown', lastError: '' };
    });
    this.#table = new MembershipTable(
      others.map((s) => s.name),
      startedMs,
      config.cluster.heartbeat.timeoutMs,
    );
    this.#local = { incarnation: startedMs, state: 'starting', hears: [] };
  }

  /**
   * Loads the key pair (a clear error when it is missing or does not match the configuration),
   * binds the ZAP handler, then the ROUTER, connects one DEALER per peer and starts the exchange.
   */
  static async open(host: MembershipHost, localView: () => Promise<LocalMembership>, startedMs = Date.now()): Promise<Membership> {
    const membership = new Membership(host, localView, loadCurveKeys(host.config, host.server, host.paths.curveSecretKey), startedMs);
    // The ZAP handler first: a client that connects before it is bound would be let in unchecked.
    const endpoint = nodeManagerEndpoint(host, host.server);
    try {
      await membership.#zap.bind();
      await membership.#server.bind();
    } catch (err) {
      membership.close();
      throw new TandemError('UNAVAILABLE', `cannot bind the node manager link on ${endpoint}: ${toTandemError(err).message}`);
    }
    membership.#timer = setInterval(() => void membership.#exchange(), host.config.cluster.heartbeat.intervalMs);
    host.log.info(`node manager link bound on ${endpoint}`, { peers: membership.#peers.map((p) => p.name).join(',') });
    void membership.#exchange();
    return membership;
  }

  /** What this node manager knows of each peer, in configuration order. */
  peers(nowMs = Date.now()): PeerView[] {
    return this.#table.views(nowMs);
  }

  /** Connection attempts the ZAP handler refused (a key that is not a configured peer's). */
  get refusedConnections(): number {
    return this.#zap.refused;
  }

  close(): void {
    clearInterval(this.#timer);
    for (const p of this.#peers) p.client.close();
    this.#server.close();
    this.#zap.close();
  }

  #message(): tandem.v1.Membership.$Properties {
    const { config, server } = this.#host;
    // config_generation stays 0 until configurations are distributed with a generation.
    return { cluster: config.cluster.name, server, ...this.#local, configGeneration: 0, sentAtMs: Date.now() };
  }

  async #answer(request: tandem.v1.Request): Promise<Awaited<ReturnType<RpcHandler>>> {
    if (request.body !== 'membership' || !request.membership) {
      throw new TandemError('BAD_REQUEST', `the node manager link does not serve ${request.body ?? 'an empty'} request`);
    }
    checkMembership(request.membership, this.#host.config, this.#host.server);
    this.#table.record(request.membership, Date.now());
    return { membership: this.#message() };
  }

  async #exchange(): Promise<void> {
    if (this.#exchanging) return;
    this.#exchanging = true;
    try {
      this.#local = await this.#localView();
      const timeoutMs = this.#host.config.cluster.heartbeat.timeoutMs;
      const body = { membership: this.#message() };
      for (const peer of this.#peers) {
        if (peer.busy) continue;
        peer.busy = true;
        void peer.client
          .call(body, { timeoutMs })
          .then((reply) => this.#received(peer, reply.membership))
          .catch((err: unknown) => this.#failed(peer, toTandemError(err)))
          .finally(() => (peer.busy = false));
      }
    } finally {
      this.#exchanging = false;
    }
    this.#noteReach();
  }

  #received(peer: Peer, m: tandem.v1.Membership | null | undefined): void {
    if (!m) return this.#failed(peer, new TandemError('BAD_REQUEST', 'the reply has no membership'));
    try {
      checkMembership(m, this.#host.config, this.#host.server);
      if (m.server !== peer.name) throw new TandemError('CONFLICT', `${peer.name}'s address answered as ${m.server}`);
    } catch (err) {
      return this.#failed(peer, toTandemError(err));
    }
    this.#table.record(m, Date.now());
    peer.lastError = '';
  }

  /** Logged once per distinct failure: an unreachable peer fails the same way every interval. */
  #failed(peer: Peer, err: TandemError): void {
    const line = err.toLine();
    if (line === peer.lastError) return;
    peer.lastError = line;
    // A refusal or a peer answering under another name is a configuration fault; silence is the heartbeat's business.
    const level = err.code === 'REFUSED' || err.code === 'CONFLICT' ? 'error' : 'debug';
    this.#host.log.log(level, `membership exchange with ${peer.name} failed: ${line}`, { peer: peer.name, code: err.code });
  }

  #noteReach(): void {
    const now = Date.now();
    for (const peer of this.#peers) {
      const reach = this.#table.reachOf(peer.name, now);
      if (reach === peer.lastReach) continue;
      const before = peer.lastReach;
      peer.lastReach = reach;
      const detail = peer.lastError ? ` (${peer.lastError})` : '';
      if (reach === 'unreachable') this.#host.log.warn(`tandem-nm on ${peer.name} is unreachable${detail}`, { peer: peer.name, before });
      else this.#host.log.info(`tandem-nm on ${peer.name} is ${reach}`, { peer: peer.name, before });
    }
  }
}
