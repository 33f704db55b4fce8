// rss_total_mb: resident memory of the six daemons together, idle with the demo group (the sum of
// their resident sets: a page shared by several processes counts in each); pss_total_mb: the same with
// shared pages divided among the processes that map them (what they take from the machine).
// idle_cpu_percent: their CPU time over 60 s idle, in percent of one core (six 10 s windows).
import { readFileSync, writeFileSync } from 'node:fs';
import { rssKb } from '@tandem/core';
import { TestServer } from '../tests/helpers/server.mjs';

export const targets = { rss_total_mb: 'median <= 300 MB', idle_cpu_percent: 'median <= 2 % of one core' };

function pssKb(pid) {
  const m = /^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
  return m ? Number(m[1]) : 0;
}
const CLK_TCK = 100;
const WINDOW_MS = 10_000;
const WINDOWS = 6;

function cpuTicks(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

export async function run(summarise) {
  // The demo's monitors: a pid monitor every second and an HTTP monitor every 2 s.
  // The demo's settings: heartbeats every second, a 5 s timeout (so a 2.5 s stall limit).
  const server = new TestServer({
    heartbeatInterval: '1s',
    heartbeatTimeout: '5s',
    monitors: `  - { name: app-alive, type: pid, target: app, interval: 1s, recovery: { target: web } }
  - { name: app-http, type: http, url: "http://127.0.0.1:PORT/", target: app, interval: 2s, timeout: 2s, startDelay: 2s }`,
  });
  const rss = [];
  const pss = [];
  const cpu = [];
  try {
    const cfg = server.env.TANDEM_CONFIG;
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('PORT', String(server.appPort)));
    await server.start();
    await server.waitFor('group online', async () => (await server.status()).groups[0]?.state === 'online');
    const st = await server.status();
    const pids = st.daemons.map((d) => d.pid).filter((p) => p > 0);
    if (pids.length !== 6) throw new Error(`expected 6 daemons, status lists ${pids.length}`);
    await new Promise((r) => setTimeout(r, 5000)); // let start-up work settle before measuring idle
    for (let w = 0; w < WINDOWS; w++) {
      const before = pids.reduce((s, p) => s + cpuTicks(p), 0);
      await new Promise((r) => setTimeout(r, WINDOW_MS));
      const ticks = pids.reduce((s, p) => s + cpuTicks(p), 0) - before;
      cpu.push((ticks / CLK_TCK / (WINDOW_MS / 1000)) * 100);
      rss.push(pids.reduce((s, p) => s + rssKb(p), 0) / 1024);
      pss.push(pids.reduce((s, p) => s + pssKb(p), 0) / 1024);
      console.log(`  window ${w + 1}: cpu ${cpu.at(-1).toFixed(2)} %, rss ${rss.at(-1).toFixed(1)} MB, pss ${pss.at(-1).toFixed(1)} MB`);
    }
  } finally {
    server.destroy();
  }
  return { rss_total_mb: summarise(rss, 'MB'), pss_total_mb: summarise(pss, 'MB'), idle_cpu_percent: summarise(cpu, '% of one core') };
}
