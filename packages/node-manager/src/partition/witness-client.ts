/**
 * Asking the witness (`tandem witness`, docs/partition.md) for this partition's lease: one
 * HTTP POST, bounded by a timeout, that never throws. Anything but a clear yes or no is
 * `unavailable`, and a server that cannot decide loses.
 */
import http from 'node:http';
import https from 'node:https';
import { isServerList, type WitnessOutcome } from './decide.js';

/** The body of a lease request, as the witness reads it. */
export interface LeaseRequest {
  cluster: string;
  server: string;
  /** the servers of the requesting partition, the requester among them */
  members: string[];
}

/** Answers larger than this are not a witness's. */
const MAX_ANSWER_BYTES = 64 * 1024;

/** `http://host:29100` or `http://host:29100/prefix` → the lease URL under it. */
export function leaseUrl(witness: string): URL {
  const base = new URL(witness);
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  return new URL('v1/lease', base);
}

/** The outcome an answer means: 200 granted, 409 refused, anything else unavailable. */
export function witnessAnswer(status: number, body: string): WitnessOutcome {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return { result: 'unavailable', reason: `the witness answered ${status} with a body that is not JSON` };
  }
  const answer = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>;
  if (status === 200 && answer['granted'] === true && isServerList(answer['holder']) && typeof answer['expiresMs'] === 'number')
    return { result: 'granted', holder: answer['holder'], expiresMs: answer['expiresMs'] };
  if (status === 409 && answer['granted'] === false && isServerList(answer['holder']))
    return { result: 'refused', holder: answer['holder'] };
  const said = typeof answer['error'] === 'string' ? `: ${answer['error']}` : '';
  return { result: 'unavailable', reason: `the witness answered ${status}${said}` };
}

/** POSTs the lease request to `<witness>/v1/lease`; resolves within `timeoutMs`, never rejects. */
export function askWitness(witness: string, request: LeaseRequest, timeoutMs: number): Promise<WitnessOutcome> {
  let url: URL;
  try {
    url = leaseUrl(witness);
  } catch {
    return Promise.resolve({ result: 'unavailable', reason: `${witness} is not a URL` });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return Promise.resolve({ result: 'unavailable', reason: `${witness}: only http and https are supported` });
  if (timeoutMs <= 0) return Promise.resolve({ result: 'unavailable', reason: 'no time left to ask the witness' });

  const body = JSON.stringify(request);
  return new Promise((resolve) => {
    let settled = false;
    const finish = (outcome: WitnessOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(
      () => finish({ result: 'unavailable', reason: `no answer from ${url.origin} within ${timeoutMs} ms` }),
      timeoutMs,
    );
    const send = url.protocol === 'https:' ? https.request : http.request;
    const req = send(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      agent: false,
    });
    req.on('error', (err) => finish({ result: 'unavailable', reason: `${url.origin}: ${err.message}` }));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_ANSWER_BYTES)
          finish({ result: 'unavailable', reason: `the witness answer is larger than ${MAX_ANSWER_BYTES} bytes` });
        else chunks.push(chunk);
      });
      res.on('error', (err) => finish({ result: 'unavailable', reason: `${url.origin}: ${err.message}` }));
      res.on('end', () => finish(witnessAnswer(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'))));
    });
    req.end(body);
  });
}
