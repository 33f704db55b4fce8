#!/usr/bin/env node
// `npm run bench` runs the quick benchmarks; `npm run bench -- NAME...` runs the ones named, among
// them failover (root only, several minutes: not in the default set). Each writes
// bench/results/<name>.json as { metrics: { <metric>: { median, min, max, unit } }, ... }; a
// benchmark that fails says why and the others still run (the exit code is then 1).
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const BENCHMARKS = ['fence', 'footprint', 'status', 'failover'];
const QUICK = ['fence', 'footprint', 'status'];
const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !BENCHMARKS.includes(w));
if (unknown.length > 0) {
  console.error(`unknown benchmark ${unknown.join(', ')}; choose from ${BENCHMARKS.join(', ')}`);
  process.exit(2);
}

function summarise(values, unit) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  const round = (x) => Math.round(x * 100) / 100;
  return { median: round(median), min: round(sorted[0]), max: round(sorted.at(-1)), unit, samples: sorted.length };
}

mkdirSync(join(here, 'results'), { recursive: true });
for (const name of wanted.length > 0 ? wanted : QUICK) {
  const { run, targets } = await import(join(here, `${name}.mjs`));
  console.log(`# ${name}`);
  let metrics;
  try {
    metrics = await run(summarise);
  } catch (err) {
    console.error(`${name} failed: ${err.message}`);
    process.exitCode = 1;
    continue;
  }
  const result = {
    benchmark: name,
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? '', node: process.version },
    targets,
    metrics,
  };
  writeFileSync(join(here, 'results', `${name}.json`), `${JSON.stringify(result, null, 2)}\n`);
  for (const [metric, m] of Object.entries(metrics)) {
    const target = targets[metric];
    const total = m.total !== undefined ? `, total ${m.total}` : '';
    console.log(`${metric}: median ${m.median} ${m.unit} (min ${m.min}, max ${m.max}${total})${target ? `  target ${target}` : ''}`);
  }
}
