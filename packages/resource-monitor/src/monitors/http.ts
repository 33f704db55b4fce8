/** `http`: a GET of `url` answers with exactly `expectStatus` (redirects are not followed). */
import type { MonitorConfig } from '@tandem/core';
import { failed, healthy, type Monitor } from './monitor.js';

export function httpMonitor(config: MonitorConfig): Monitor {
  const url = config.url ?? '';
  const expectStatus = config.expectStatus ?? 200;
  return {
    async check(signal) {
      let status: number;
      try {
        const res = await fetch(url, { signal, redirect: 'manual' });
        status = res.status;
        await res.body?.cancel();
      } catch (err) {
        const cause = (err as { cause?: { code?: string; message?: string } }).cause;
        return failed(`GET ${url} failed: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
      }
      return status === expectStatus ? healthy(`GET ${url}: ${status}`) : failed(`GET ${url}: ${status}, expected ${expectStatus}`);
    },
  };
}
