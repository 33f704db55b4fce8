// fence_latency_ms: from SIGKILL of a core daemon to the moment every process of the group is gone.
import { DAEMONS, isGroupAlive, readLedger } from '@tandem/core';
import { TestServer } from '../tests/helpers/server.mjs';

export const targets = { fence_latency_ms: 'median <= 100 ms' };
const RUNS = 10;
const worker = `{ name: worker, type: exec, mode: async, start: "sleep 1000 & sleep 1000 & wait", stopTimeout: 2s }`;

export async function run(summarise) {
  const server = new TestServer({ stallLimit: '1s', resources: worker });
  const samples = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      const daemon = DAEMONS[i % DAEMONS.length];
      server.pm2(['delete', 'all']);
      await server.start();
      await server.waitFor('both resources running', () => readLedger(server.paths.ledger).length >= 2);
      const pgids = readLedger(server.paths.ledger).map((e) => e.pgid);
      const pid = server.daemonPid(daemon);
      const t0 = performance.now();
      process.kill(pid, 'SIGKILL');
      // Poll tightly: the measurement's own resolution is well under a millisecond.
      while (pgids.some(isGroupAlive)) {
        if (performance.now() - t0 > 10_000) throw new Error(`process groups still alive 10 s after killing ${daemon}`);
        await new Promise((r) => setImmediate(r));
      }
      const ms = performance.now() - t0;
      samples.push(ms);
      console.log(`  run ${i + 1}: kill -9 tandem-${daemon} → ${pgids.length} process groups gone in ${ms.toFixed(1)} ms`);
    }
  } finally {
    server.destroy();
  }
  return { fence_latency_ms: summarise(samples, 'ms') };
}
