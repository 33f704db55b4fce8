// node side process: argv server, delayMs, keysjson ; prints reach transitions with timestamps
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger, resolvePaths, validateConfigText, sleep } from '@tandem/core';
import { Membership } from '@tandem/node-manager';
const [server, delay, keysJson, block] = process.argv.slice(2);
const keys = JSON.parse(keysJson);
const ADDRESS = { node1: '127.0.0.2', node2: '127.0.0.3', node3: '127.0.0.4' };
const text = `
cluster: { name: demo, nodeManagerPort: 41795, heartbeat: { interval: 200ms, timeout: 1s }, emergency: { action: exec, command: "true" } }
servers:
${Object.keys(ADDRESS).map((n) => `  - { name: ${n}, interconnects: [${ADDRESS[n]}], publicKey: "${keys[n].publicKey}" }`).join('\n')}
`;
const config = validateConfigText(text).config;
const home = mkdtempSync('/tmp/nmx/h-');
const paths = resolvePaths({ TANDEM_HOME: home, TANDEM_CONFIG: join(home, 'cluster.yaml') });
mkdirSync(paths.state, { recursive: true });
writeFileSync(paths.curveSecretKey, keys[server].secretKey + '\n');
const log = createLogger({ daemon: 'nm', server, logsDir: paths.logs, console: true, level: 'debug' });
await sleep(Number(delay));
// simulate start-up load: block the event loop in chunks
const stopAt = Date.now() + 4000;
const blocker = setInterval(() => { if (Date.now() > stopAt) return clearInterval(blocker); const e = Date.now() + Number(block); while (Date.now() < e); }, 50);
const m = await Membership.open({ config, server, paths, log }, async () => ({ incarnation: Date.now(), state: 'online', hears: [] }));
console.log(new Date().toISOString(), server, 'opened');
let last = '';
setInterval(() => { const s = m.peers().map((p) => `${p.server}:${p.reach}`).join(' '); if (s !== last) { last = s; console.log(new Date().toISOString(), server, s); } }, 20);
setTimeout(() => { m.close(); process.exit(0); }, 20000);
