// status_latency_ms: wall time of `tandem status --json` (a whole CLI process) on an idle server.
import { TestServer } from '../tests/helpers/server.mjs';

export const targets = { status_latency_ms: 'median <= 300 ms' };
const RUNS = 20;

export async function run(summarise) {
  const server = new TestServer();
  const samples = [];
  try {
    await server.start();
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      const r = await server.cli(['status', '--json']);
      const ms = performance.now() - t0;
      if (r.code !== 0) throw new Error(`tandem status failed: ${r.stderr}`);
      JSON.parse(r.stdout);
      samples.push(ms);
    }
  } finally {
    server.destroy();
  }
  return { status_latency_ms: summarise(samples, 'ms') };
}
