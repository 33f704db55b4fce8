/**
 * `http`: a GET of `url` answers with exactly `expectStatus` (redirects are not followed).
 * node:http/https rather than fetch: fetch loads undici, about 10 MB more in a daemon that
 * otherwise idles.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { MonitorConfig } from '@tandem/core';
import { failed, healthy, type Monitor } from './monitor.js';

function getStatus(url: string, signal: AbortSignal): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = url.startsWith('https:') ? httpsRequest : httpRequest;
    const req = request(url, { method: 'GET', signal, agent: false }, (res) => {
      // The status is all a check needs: close the connection rather than read a body that may be
      // long, slow or endless (each check would leave a socket behind).
      resolve(res.statusCode ?? 0);
      res.destroy();
    });
    req.on('error', reject);
    req.end();
  });
}

export function httpMonitor(config: MonitorConfig): Monitor {
  const url = config.url ?? '';
  const expectStatus = config.expectStatus ?? 200;
  return {
    async check(signal) {
      let status: number;
      try {
        status = await getStatus(url, signal);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        return failed(`GET ${url} failed: ${e.code ?? e.message}`);
      }
      return status === expectStatus ? healthy(`GET ${url}: ${status}`) : failed(`GET ${url}: ${status}, expected ${expectStatus}`);
    },
  };
}
