/**
 * `tandem witness`: the third-party service of the witness partition method (DESIGN.md 6.2,
 * docs/partition.md). It holds one lease per cluster name and grants it to one partition at a
 * time. State is in memory only: a restarted witness grants to the first partition that asks.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { TandemError, formatDuration } from '@tandem/core';
import { parseDurationOption } from './args.js';
import { UsageError } from './errors.js';

/** A lease request, as tandem-nm sends it (`askWitness` in @tandem/node-manager). */
export interface LeaseRequest {
  cluster: string;
  server: string;
  /** the servers of the requesting partition, the requester among them */
  members: string[];
}

export interface WitnessLease {
  holder: string[];
  expiresAtMs: number;
}

export type LeaseDecision = { granted: true; lease: WitnessLease; renewed: boolean } | { granted: false; lease: WitnessLease };

export const MAX_BODY_BYTES = 64 * 1024;
/** Names longer than this, or more members than this, are not a cluster's. */
const MAX_NAME_CHARS = 256;
const MAX_MEMBERS = 256;
/** Live leases held at once; a flood of invented cluster names cannot grow the service without bound. */
const MAX_CLUSTERS = 10_000;

/**
 * Who gets the lease: the first partition that asks while no lease is valid; a requester inside
 * the holder's members renews it, and the holder becomes the requester's partition (so a holder
 * that splits again is granted to one half only); anyone else is refused until it expires.
 */
export function decideLease(current: WitnessLease | undefined, request: LeaseRequest, nowMs: number, ttlMs: number): LeaseDecision {
  const valid = current !== undefined && current.expiresAtMs > nowMs;
  const mine: WitnessLease = { holder: [...request.members], expiresAtMs: nowMs + ttlMs };
  if (!valid) return { granted: true, lease: mine, renewed: false };
  if (current.holder.includes(request.server)) return { granted: true, lease: mine, renewed: true };
  return { granted: false, lease: current };
}

/** `--port 29100`; 0 lets the system pick a free port. */
export function parseWitnessPort(port: number): number {
  if (!(Number.isInteger(port) && port >= 0 && port <= 65535))
    throw new UsageError(`--port ${port}: must be a whole number from 0 to 65535`);
  return port;
}

/** `--ttl 30s` → 30000; at least 100 ms. */
export const parseWitnessTtl = (text: string): number => parseDurationOption('ttl', text);

const isName = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= MAX_NAME_CHARS;

/** The request in a body, or the one-line reason it is not one. */
export function parseLeaseRequest(text: string): LeaseRequest | { error: string } {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return { error: 'the body is not JSON' };
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    return { error: 'the body must be a JSON object {cluster, server, members}' };
  const { cluster, server, members } = body as Record<string, unknown>;
  if (!isName(cluster)) return { error: `cluster must be a name of 1 to ${MAX_NAME_CHARS} characters` };
  if (!isName(server)) return { error: `server must be a name of 1 to ${MAX_NAME_CHARS} characters` };
  if (!Array.isArray(members) || members.length === 0 || members.length > MAX_MEMBERS || !members.every(isName))
    return { error: `members must be a list of 1 to ${MAX_MEMBERS} server names` };
  if (!members.includes(server)) return { error: `members must include the requesting server ${server}` };
  return { cluster, server, members: [...new Set(members as string[])] };
}

export interface WitnessOptions {
  port: number;
  bind: string;
  ttlMs: number;
  /** one line per decision (default: stdout with a timestamp) */
  log?: (line: string) => void;
  /** wall clock, replaceable in tests */
  now?: () => number;
}

export interface WitnessServer {
  /** the address actually bound (port 0 picks a free one) */
  address: { host: string; port: number };
  close(): Promise<void>;
}

const stdoutLog = (line: string): void => {
  process.stdout.write(`${new Date().toISOString()} ${line}\n`);
};

const list = (names: string[]): string => names.join(', ');

/** Starts the witness; rejects when it cannot listen (CONFLICT: the address is in use, or BAD_REQUEST). */
export async function startWitness(opts: WitnessOptions): Promise<WitnessServer> {
  const log = opts.log ?? stdoutLog;
  const now = opts.now ?? Date.now;
  const leases = new Map<string, WitnessLease>();

  const answer = (res: http.ServerResponse, status: number, body: object): void => {
    if (res.headersSent || res.destroyed) return;
    const text = `${JSON.stringify(body)}\n`;
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const reject = (res: http.ServerResponse, status: number, error: string, who: string, extra: Record<string, string> = {}): void => {
    log(`refused a bad request from ${who}: ${status} ${error}`);
    if (!res.headersSent) for (const [k, v] of Object.entries(extra)) res.setHeader(k, v);
    answer(res, status, { error });
  };

  const decide = (request: LeaseRequest, res: http.ServerResponse): void => {
    const t = now();
    if (!leases.has(request.cluster) && leases.size >= MAX_CLUSTERS) {
      for (const [name, lease] of leases) if (lease.expiresAtMs <= t) leases.delete(name);
      if (leases.size >= MAX_CLUSTERS) {
        log(`cluster ${request.cluster}: not served to ${request.server}: ${MAX_CLUSTERS} clusters already hold a lease`);
        answer(res, 503, { error: `the witness already holds ${MAX_CLUSTERS} leases` });
        return;
      }
    }
    const d = decideLease(leases.get(request.cluster), request, t, opts.ttlMs);
    const expiresMs = Math.max(0, d.lease.expiresAtMs - t);
    if (d.granted) {
      leases.set(request.cluster, d.lease);
      const what = d.renewed ? `renewed by ${request.server}` : `granted to ${request.server}`;
      log(`cluster ${request.cluster}: lease ${what} for ${list(d.lease.holder)} (${formatDuration(opts.ttlMs)})`);
      answer(res, 200, { granted: true, holder: d.lease.holder, expiresMs });
    } else {
      log(
        `cluster ${request.cluster}: lease refused to ${request.server} for ${list(request.members)}: held by ${list(d.lease.holder)} for ${expiresMs} ms more`,
      );
      answer(res, 409, { granted: false, holder: d.lease.holder, expiresMs });
    }
  };

  const server = http.createServer((req, res) => {
    const who = `${req.socket.remoteAddress ?? '?'}`;
    try {
      const path = new URL(req.url ?? '/', 'http://witness').pathname;
      if (path !== '/v1/lease') return reject(res, 404, `no such path: ${path} (POST /v1/lease)`, who);
      if (req.method !== 'POST') return reject(res, 405, `${req.method ?? '?'} is not allowed on /v1/lease (POST)`, who, { allow: 'POST' });
      const tooLarge = (): void => {
        // Answer, stop reading, and drop the connection once the answer is out.
        req.removeAllListeners('data');
        req.pause();
        res.on('finish', () => req.socket.destroy());
        reject(res, 413, `the body is larger than ${MAX_BODY_BYTES} bytes`, who, { connection: 'close' });
      };
      if (Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES) return tooLarge();
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) tooLarge();
        else chunks.push(chunk);
      });
      req.on('error', () => req.socket.destroy());
      req.on('end', () => {
        if (size > MAX_BODY_BYTES) return;
        const request = parseLeaseRequest(Buffer.concat(chunks).toString('utf8'));
        if ('error' in request) return reject(res, 400, request.error, who);
        decide(request, res);
      });
    } catch (err) {
      // nothing a client sends may stop the service
      log(`internal error on a request from ${who}: ${(err as Error).message}`);
      answer(res, 500, { error: 'internal error' });
    }
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
  });

  await new Promise<void>((resolve, rejectListen) => {
    const failed = (err: NodeJS.ErrnoException): void => {
      const where = `${opts.bind}:${opts.port}`;
      if (err.code === 'EADDRINUSE') rejectListen(new TandemError('CONFLICT', `cannot listen on ${where}: the address is in use`));
      else rejectListen(new TandemError('BAD_REQUEST', `cannot listen on ${where}: ${err.message}`));
    };
    server.once('error', failed);
    server.listen(opts.port, opts.bind, () => {
      server.off('error', failed);
      resolve();
    });
  });
  server.on('error', (err) => log(`server error: ${err.message}`));
  const bound = server.address() as AddressInfo;
  return {
    address: { host: bound.address, port: bound.port },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The command: serves until SIGTERM or SIGINT, then stops cleanly. */
export async function runWitness(opts: WitnessOptions): Promise<void> {
  const log = opts.log ?? stdoutLog;
  const witness = await startWitness({ ...opts, log });
  log(`witness listening on ${witness.address.host}:${witness.address.port} (lease ttl ${formatDuration(opts.ttlMs)})`);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  await witness.close();
  log(`witness stopped (${signal})`);
}
