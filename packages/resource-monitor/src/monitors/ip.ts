/**
 * `ip`: at least one of `addresses` answers a ping within the check's timeout. The pings run in
 * parallel; the first answer ends the check and the other pings are killed.
 */
import { runCommand, type MonitorConfig } from '@tandem/core';
import { failed, healthy, type CheckResult, type Monitor } from './monitor.js';

/** How much sooner than the check's timeout ping gives up waiting: time to start it and read its answer. */
const PING_WAIT_MARGIN_MS = 200;
const PING_WAIT_MIN_MS = 100;

/** What one ping said: answered, or why not. */
async function pingOnce(address: string, waitSeconds: number, signal: AbortSignal): Promise<{ address: string; failure: string }> {
  // An address is an argument, never an option.
  if (address.startsWith('-')) return { address, failure: 'not an address' };
  const result = await runCommand('ping', ['-n', '-q', '-c', '1', '-W', String(waitSeconds), address], { signal });
  if (result.code === 0) return { address, failure: '' };
  return { address, failure: result.code === 1 ? 'no answer' : result.failure };
}

export function ipMonitor(config: MonitorConfig): Monitor {
  const addresses = config.addresses ?? [];
  // ping's own wait, in seconds (fractions allowed): a little less than the check's timeout, so that
  // silent targets end the check themselves, with their reasons, before it is aborted.
  const waitSeconds = Math.max(PING_WAIT_MIN_MS, config.timeoutMs - PING_WAIT_MARGIN_MS) / 1000;
  return {
    async check(signal): Promise<CheckResult> {
      if (addresses.length === 0) return failed('no address to ping');
      const done = new AbortController();
      const onAbort = (): void => done.abort();
      signal.addEventListener('abort', onAbort, { once: true });
      if (signal.aborted) done.abort(); // aborted before the listener was there
      try {
        const pings = addresses.map((a) =>
          pingOnce(a, waitSeconds, done.signal).then((r) => {
            if (!r.failure) done.abort(); // one answer is enough: the others are not waited for
            return r;
          }),
        );
        const results = await Promise.all(pings);
        const answered = results.find((r) => !r.failure);
        if (answered) return healthy(`${answered.address} answers`);
        if (signal.aborted) return failed(`no answer before the check's timeout from ${addresses.join(', ')}`);
        return failed(`no address answers: ${results.map((r) => `${r.address} ${r.failure}`).join(', ')}`);
      } finally {
        signal.removeEventListener('abort', onAbort);
      }
    },
  };
}
