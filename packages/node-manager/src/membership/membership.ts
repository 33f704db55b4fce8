/**
 * The membership exchange between node managers (DESIGN.md sections 2, 5, 6.1): every heartbeat
 * interval this node manager tells each peer what it hears and stores what the peer answers; a
 * peer silent for the heartbeat timeout is unreachable. The link is ZeroMQ over TCP with CURVE,
 * and the ZAP handler admits only the configured peers' keys. It follows the interconnects: the
 * ROUTER is bound on every interconnect address of this server, and each peer gets one DEALER per
 * interconnect address of its own (a path); every exchange goes out on every path, and a peer is
 * reachable while it answered on any path (or asked) within the heartbeat timeout. Only for
 * configurations with more than one server.
 */
import * as zmq from 'zeromq';
import { PM2_NAMES, RpcClient, RpcServer, TandemError, toTandemError, type DaemonContext, type RpcHandler } from '@tandem/core';
import type { tandem } from '@tandem/protocol';
import { loadCurveKeys, type CurveKeys } from './keys.js';
import { MembershipTable, checkMembership, type LostPeer, type PeerReach, type PeerView } from './table.js';
import { ZapHandler } from './zap.js';

/** What this server says of itself in each exchange. */
export interface LocalMembership {
  incarnation: number;
  state: string;
  hears: string[];
  /** the servers heard once but not within the quorum lease, and for how long */
  lost?: LostPeer[];
  /** the groups that are not offline here */
  groups?: { group: string; state: string }[];
  /** the servers this one declared down, with the incarnation each had */
  down?: { server: string; incarnation: number }[];
  startupDone?: boolean;
  /** the generation of the configuration file installed on this server */
  configGeneration?: number;
}

/** What the node manager does with the link's other requests (orders, forwarded group commands) and with every membership heard. */
export interface LinkHandlers {
  /** a checked membership from `from`, request or reply */
  heard?: (from: string, m: tandem.v1.Membership) => void;
  /** any other request a peer's node manager sends (orders, forwarded commands); CURVE and the ZAP allow-list admitted the peer */
  request?: (request: tandem.v1.Request) => Promise<Awaited<ReturnType<RpcHandler>>>;
}

export type MembershipHost = Pick<DaemonContext, 'config' | 'server' | 'paths' | 'log'>;

/** The first reconnect interval; the next ones double up to the heartbeat interval. */
const RECONNECT_MS = 100;
const ZAP_DOMAIN = 'tandem-nm';
/** A path silent for this many heartbeat timeouts gets a new DEALER (see `#renew`). */
const RENEW_AFTER_TIMEOUTS = 2;

/** This server's DEALER to one of a peer's interconnect addresses. */
interface Path {
  index: number;
  endpoint: string;
  client: RpcClient;
  madeMs: number;
  lastError: string;
  answering: boolean;
}

interface Peer {
  name: string;
  publicKey: string;
  paths: Path[];
  lastReach: PeerReach;
}

/** The node manager link's endpoints of a server: one per interconnect, in configuration order (the heartbeat path index). */
export function nodeManagerEndpoints(host: Pick<MembershipHost, 'config'>, server: string): string[] {
  const s = host.config.servers.find((x) => x.name === server);
  if (!s?.interconnects.length) throw new TandemError('NOT_FOUND', `server ${server} has no interconnect address in the configuration`);
  return s.interconnects.map((address) => `tcp://${address}:${host.config.cluster.nodeManagerPort}`);
}

export class Membership {
  readonly #host: MembershipHost;
  readonly #localView: () => Promise<LocalMembership>;
  readonly #keys: CurveKeys;
  readonly #context: zmq.Context;
  readonly #zap: ZapHandler;
  readonly #router: zmq.Router;
  readonly #endpoints: string[];
  readonly #server: RpcServer;
  readonly #peers: Peer[];
  readonly #table: MembershipTable;
  #local: LocalMembership;
  readonly #handlers: LinkHandlers;
  #timer: NodeJS.Timeout | undefined;
  #exchanging = false;
  /** a refresh asked for while an exchange ran: one more exchange follows it */
  #again = false;
  #closed = false;

  private constructor(
    host: MembershipHost,
    localView: () => Promise<LocalMembership>,
    keys: CurveKeys,
    startedMs: number,
    handlers: LinkHandlers,
  ) {
    const { config, server } = host;
    const { intervalMs, timeoutMs } = config.cluster.heartbeat;
    this.#host = host;
    this.#localView = localView;
    this.#keys = keys;
    this.#handlers = handlers;
    const others = config.servers.filter((s) => s.name !== server);
    // A context of its own: the ZAP endpoint is per context, and it answers only for this link.
    this.#context = new zmq.Context({ blocky: false });
    this.#zap = new ZapHandler(this.#context, new Map(others.map((s) => [s.publicKey!, s.name])), host.log);
    // ZMTP heartbeats drop a connection whose packets no longer arrive (an interconnect down)
    // instead of leaving it to TCP's retransmission backoff.
    this.#router = new zmq.Router({
      context: this.#context,
      linger: 0,
      curveServer: true,
      curvePublicKey: keys.publicKey,
      curveSecretKey: keys.secretKey,
      zapDomain: ZAP_DOMAIN,
      // Without a ZAP handler, libzmq would let every CURVE client in: refuse instead (fail closed).
      zapEnforceDomain: true,
      heartbeatInterval: intervalMs,
      heartbeatTimeout: timeoutMs,
    });
    this.#endpoints = nodeManagerEndpoints(host, server);
    // The peer's deadline comes from the peer's clock: it is not held against this one's.
    this.#server = new RpcServer(this.#endpoints[0]!, (request) => this.#answer(request), host.log, {
      router: this.#router,
      deadlines: false,
    });
    this.#peers = others.map((s): Peer => {
      const peer: Peer = { name: s.name, publicKey: s.publicKey!, paths: [], lastReach: 'unknown' };
      peer.paths = nodeManagerEndpoints(host, s.name).map((endpoint, index) => this.#path(peer, index, endpoint));
      return peer;
    });
    this.#table = new MembershipTable(
      others.map((s) => ({ server: s.name, addresses: s.interconnects })),
      startedMs,
      timeoutMs,
    );
    // Incarnation 0 (not known) until hb tells it: an answer given before the first exchange must
    // not carry a number of its own, or the peer would take hb's (smaller) counter for an older life.
    this.#local = { incarnation: 0, state: 'starting', hears: [] };
  }

  /**
   * Loads the key pair (a clear error when it is missing or does not match the configuration),
   * binds the ZAP handler, then the ROUTER on every interconnect address of this server, connects
   * one DEALER per peer and interconnect, and starts the exchange.
   */
  static async open(
    host: MembershipHost,
    localView: () => Promise<LocalMembership>,
    startedMs = Date.now(),
    handlers: LinkHandlers = {},
  ): Promise<Membership> {
    const keys = loadCurveKeys(host.config, host.server, host.paths.curveSecretKey);
    const membership = new Membership(host, localView, keys, startedMs, handlers);
    // The ZAP handler first: a client that connects before it is bound would be let in unchecked.
    const [first, ...more] = membership.#endpoints;
    let endpoint = first!;
    try {
      await membership.#zap.bind();
      for (endpoint of more) await membership.#router.bind(endpoint);
      endpoint = first!;
      await membership.#server.bind();
    } catch (err) {
      membership.close();
      throw new TandemError('UNAVAILABLE', `cannot bind the node manager link on ${endpoint}: ${toTandemError(err).message}`);
    }
    membership.#timer = setInterval(() => membership.#exchangeSafely(), host.config.cluster.heartbeat.intervalMs);
    host.log.info(`node manager link bound on ${membership.#endpoints.join(', ')}`, {
      peers: membership.#peers.map((p) => p.name).join(','),
    });
    membership.#exchangeSafely();
    return membership;
  }

  /** What this node manager knows of each peer, in configuration order. */
  peers(nowMs = Date.now()): PeerView[] {
    return this.#table.views(nowMs);
  }

  /**
   * Sends a request to a peer's node manager on the path that answered last (then the others):
   * orders and forwarded group commands. Throws UNAVAILABLE when no path takes it.
   */
  async call(server: string, body: Parameters<RpcClient['call']>[0], timeoutMs: number): Promise<tandem.v1.Reply> {
    const peer = this.#peers.find((p) => p.name === server);
    if (!peer) throw new TandemError('NOT_FOUND', `no peer named ${server}`);
    const view = this.#table.views(Date.now()).find((v) => v.server === server);
    const order = [...peer.paths].sort((a, b) => (view?.paths[b.index]?.lastAnsweredMs ?? 0) - (view?.paths[a.index]?.lastAnsweredMs ?? 0));
    let last: TandemError | undefined;
    for (const path of order) {
      try {
        return await path.client.call(body, { timeoutMs });
      } catch (err) {
        last = toTandemError(err);
        // Only a request that never left may go out again on another path; anything else has an answer or may have run.
        if (last.details['notSent'] !== 'true') throw last;
      }
    }
    throw new TandemError('UNAVAILABLE', `tandem-nm on ${server} cannot be reached: ${last?.message ?? 'no path'}`);
  }

  /** Exchanges now rather than at the next interval (hb heard or lost a server). */
  refresh(): void {
    if (this.#exchanging) this.#again = true;
    else this.#exchangeSafely();
  }

  /** Connection attempts the ZAP handler refused (a key that is not a configured peer's). */
  get refusedConnections(): number {
    return this.#zap.refused;
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    for (const p of this.#peers) for (const path of p.paths) path.client.close();
    this.#server.close();
    this.#zap.close();
  }

  /** A DEALER to one of the peer's addresses, with the peer's key as the CURVE server key. */
  #path(peer: Peer, index: number, endpoint: string): Path {
    const { intervalMs, timeoutMs } = this.#host.config.cluster.heartbeat;
    // `immediate` + `sendTimeout: 0`: a request to a peer that is not connected fails at once
    // instead of waiting in a queue. `connectTimeout`: a connection attempt whose packets are
    // dropped is retried after a heartbeat timeout, not after TCP's SYN backoff (up to minutes).
    const dealer = new zmq.Dealer({
      context: this.#context,
      linger: 0,
      immediate: true,
      sendTimeout: 0,
      // A peer that starts or comes back answers within about two heartbeat intervals: one to
      // connect, one for the next exchange. A connection refused on the same LAN costs little.
      reconnectInterval: Math.min(RECONNECT_MS, intervalMs),
      reconnectMaxInterval: intervalMs,
      connectTimeout: timeoutMs,
      heartbeatInterval: intervalMs,
      heartbeatTimeout: timeoutMs,
      tcpMaxRetransmitTimeout: timeoutMs,
      curveServerKey: peer.publicKey,
      curvePublicKey: this.#keys.publicKey,
      curveSecretKey: this.#keys.secretKey,
    });
    const client = new RpcClient(endpoint, { name: `tandem-nm on ${peer.name} (${endpoint})`, origin: PM2_NAMES.nm, dealer });
    return { index, endpoint, client, madeMs: Date.now(), lastError: '', answering: false };
  }

  /**
   * Replaces the DEALER of a path that has not answered for a while. libzmq never reconnects a
   * DEALER whose CURVE handshake failed (say, the peer ran for a while with a configuration that
   * did not list this server's key yet), and a new socket also clears any other stuck connection
   * state. At most once per few heartbeat timeouts: a peer that is down costs one connection attempt then.
   */
  #renew(peer: Peer, path: Path, nowMs: number): Path {
    const afterMs = RENEW_AFTER_TIMEOUTS * this.#host.config.cluster.heartbeat.timeoutMs;
    const lastAnsweredMs = this.#table.views(nowMs).find((v) => v.server === peer.name)?.paths[path.index]?.lastAnsweredMs ?? 0;
    if (nowMs - Math.max(lastAnsweredMs, path.madeMs) < afterMs) return path;
    this.#host.log.debug(`new connection to tandem-nm on ${peer.name} at ${path.endpoint}: no answer for ${afterMs} ms`, {
      peer: peer.name,
    });
    path.client.close();
    const fresh = { ...this.#path(peer, path.index, path.endpoint), lastError: path.lastError, answering: path.answering };
    peer.paths[path.index] = fresh;
    return fresh;
  }

  #message(): tandem.v1.Membership.$Properties {
    const { config, server } = this.#host;
    // config_generation: the generation of the file installed here (0 before the first tandem config apply).
    const { incarnation, state, hears, lost = [], groups = [], down = [], startupDone = false, configGeneration = 0 } = this.#local;
    return {
      cluster: config.cluster.name,
      server,
      incarnation,
      state,
      hears,
      lost,
      groups,
      down,
      startupDone,
      configGeneration,
      sentAtMs: Date.now(),
    };
  }

  async #answer(request: tandem.v1.Request): Promise<Awaited<ReturnType<RpcHandler>>> {
    if (request.body !== 'membership' || !request.membership) {
      if (request.body !== 'membership' && request.body !== undefined && this.#handlers.request) return this.#handlers.request(request);
      throw new TandemError('BAD_REQUEST', `the node manager link does not serve ${request.body ?? 'an empty'} request`);
    }
    checkMembership(request.membership, this.#host.config, this.#host.server);
    this.#table.record(request.membership, Date.now());
    this.#handlers.heard?.(request.membership.server, request.membership);
    return { membership: this.#message() };
  }

  /** An exchange whose failure is logged: a rejection left unhandled would take nm (and the server) down. */
  #exchangeSafely(): void {
    this.#exchange().catch((err: unknown) => this.#host.log.error('membership exchange failed', { error: String(err) }));
  }

  /**
   * Sends this server's membership to every peer on every path. No request waits for the one
   * before it: a request lost on the way (a connection that broke, a peer that restarted) costs
   * that request only, and each expires after the heartbeat timeout, so at most timeout/interval
   * are in flight per path.
   */
  async #exchange(): Promise<void> {
    if (this.#exchanging || this.#closed) return;
    this.#exchanging = true;
    try {
      this.#local = await this.#localView();
      if (this.#closed) return;
      const timeoutMs = this.#host.config.cluster.heartbeat.timeoutMs;
      const body = { membership: this.#message() };
      const now = Date.now();
      for (const peer of this.#peers) {
        for (const old of peer.paths) {
          const path = this.#renew(peer, old, now);
          path.client
            .call(body, { timeoutMs })
            .then(
              (reply) => this.#received(peer, path, reply.membership),
              (err: unknown) => this.#failed(peer, path, toTandemError(err)),
            )
            .catch((err: unknown) => this.#host.log.error('membership reply not handled', { peer: peer.name, error: String(err) }));
        }
      }
    } finally {
      this.#exchanging = false;
    }
    this.#noteReach();
    if (this.#again && !this.#closed) {
      this.#again = false;
      this.#exchangeSafely();
    }
  }

  #received(peer: Peer, path: Path, m: tandem.v1.Membership | null | undefined): void {
    if (!m) return this.#failed(peer, path, new TandemError('BAD_REQUEST', 'the reply has no membership'));
    try {
      checkMembership(m, this.#host.config, this.#host.server);
      if (m.server !== peer.name) throw new TandemError('CONFLICT', `${peer.name}'s address ${path.endpoint} answered as ${m.server}`);
    } catch (err) {
      return this.#failed(peer, path, toTandemError(err));
    }
    this.#table.record(m, Date.now(), path.index);
    path.lastError = '';
    this.#handlers.heard?.(m.server, m);
  }

  /** Logged once per distinct failure and path: an unreachable peer fails the same way every interval. */
  #failed(peer: Peer, path: Path, err: TandemError): void {
    if (this.#closed) return;
    const line = err.toLine();
    if (line === path.lastError) return;
    path.lastError = line;
    // A refusal or a peer answering under another name is a configuration fault; silence is the heartbeat's business.
    const level = err.code === 'REFUSED' || err.code === 'CONFLICT' ? 'error' : 'debug';
    this.#host.log.log(level, `membership exchange with ${peer.name} at ${path.endpoint} failed: ${line}`, {
      peer: peer.name,
      code: err.code,
    });
  }

  #noteReach(): void {
    const now = Date.now();
    const views = this.#table.views(now);
    for (const peer of this.#peers) {
      const view = views.find((v) => v.server === peer.name);
      if (!view) continue;
      for (const path of peer.paths) {
        const answering = view.paths[path.index]?.answering ?? false;
        if (answering === path.answering) continue;
        path.answering = answering;
        // A path that stops or comes back while the peer stays reachable; the peer's own changes are told below.
        if (view.reach === 'reachable' && peer.lastReach === 'reachable') {
          const how = answering ? 'answers again' : `stopped answering${path.lastError ? ` (${path.lastError})` : ''}`;
          this.#host.log.log(answering ? 'info' : 'warn', `tandem-nm on ${peer.name} at ${path.endpoint} ${how}`, {
            peer: peer.name,
            path: path.index,
          });
        }
      }
      const reach = view.reach;
      if (reach === peer.lastReach) continue;
      const before = peer.lastReach;
      peer.lastReach = reach;
      const detail = reach === 'unreachable' ? peer.paths.map((p) => p.lastError).find((e) => e) : undefined;
      if (reach === 'unreachable')
        this.#host.log.warn(`tandem-nm on ${peer.name} is unreachable${detail ? ` (${detail})` : ''}`, { peer: peer.name, before });
      else this.#host.log.info(`tandem-nm on ${peer.name} is ${reach}`, { peer: peer.name, before });
    }
  }
}
