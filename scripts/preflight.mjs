// Run by ecosystem.config.js before pm2 starts anything: validates the configuration for this
// server and works out how long pm2 must let tandem-rc stop. Prints one JSON line.
import { readFileSync } from 'node:fs';
import { localServerName, resolvePaths, validateConfigForServer } from '@tandem/core';
import { rcStopTimeoutMs } from '@tandem/resource-controller';

const path = resolvePaths().config;
let problems;
let rcKillTimeoutMs = 0;
try {
  const v = validateConfigForServer(readFileSync(path, 'utf8'), localServerName());
  if (!v.ok) problems = v.problems;
  // rc's own stop budget, plus its goodbye to the guard and the log flush.
  else rcKillTimeoutMs = rcStopTimeoutMs(v.config) + 5000;
} catch (err) {
  problems = [`cannot read ${path}: ${err.message}`];
}
console.log(JSON.stringify(problems ? { ok: false, path, problems } : { ok: true, path, rcKillTimeoutMs }));
