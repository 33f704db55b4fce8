import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as zmq from 'zeromq';
import { createLogger, resolvePaths, validateConfigText, sleep } from '@tandem/core';
import { Membership } from '@tandem/node-manager';
const PORT = 41781;
const ADDRESS = { node1: '127.0.0.2', node2: '127.0.0.3' };
const keys = { node1: zmq.curveKeyPair(), node2: zmq.curveKeyPair() };
const text = `
cluster: { name: demo, nodeManagerPort: ${PORT}, heartbeat: { interval: 100ms, timeout: 600ms }, emergency: { action: exec, command: "true" } }
servers:
${Object.keys(ADDRESS).map((n) => `  - { name: ${n}, interconnects: [${ADDRESS[n]}], publicKey: "${keys[n].publicKey}" }`).join('\n')}
`;
const config = validateConfigText(text).config;
function host(server) {
  const home = mkdtempSync('/tmp/nmx/h-');
  const paths = resolvePaths({ TANDEM_HOME: home, TANDEM_CONFIG: join(home, 'cluster.yaml') });
  mkdirSync(paths.state, { recursive: true });
  writeFileSync(paths.curveSecretKey, keys[server].secretKey + '\n');
  return { config, server, paths, log: createLogger({ daemon: 'nm', server, logsDir: paths.logs, console: true, level: 'debug' }) };
}
const t0 = Date.now();
const el = () => Date.now() - t0;
const one = await Membership.open(host('node1'), async () => ({ incarnation: 1, state: 'online', hears: [] }));
const delay = Number(process.argv[2] ?? 3000);
await sleep(delay);
let two = await Membership.open(host('node2'), async () => ({ incarnation: 2, state: 'online', hears: [] }));
const t2 = el();
const watch = async (label, start) => {
  const d = Date.now() + 15000;
  while (Date.now() < d) {
    if (one.peers()[0].reach === 'reachable' && two.peers()[0].reach === 'reachable') { console.log(label, 'both reachable after', el() - start, 'ms'); return; }
    await sleep(20);
  }
  console.log(label, 'NOT reachable after 15s', one.peers()[0].reach, two.peers()[0].reach);
};
await watch('late start', t2);
for (let i = 0; i < 3; i++) {
  two.close();
  await sleep(Number(process.argv[3] ?? 1500));
  two = await Membership.open(host('node2'), async () => ({ incarnation: 3 + i, state: 'online', hears: [] }));
  const s = el();
  await watch('restart ' + i, s);
}
two.close(); one.close();
