#!/usr/bin/env node
// `npm start` / `npm stop` / `npm run tandem -- ARGS`: a one-server demo cluster under pm2, with
// PM2_HOME and TANDEM_HOME in .demo/ of the project, so it needs no root and touches nothing else.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const demo = join(root, '.demo');
const env = {
  ...process.env,
  PM2_HOME: join(demo, 'pm2'),
  TANDEM_HOME: join(demo, 'home'),
  TANDEM_CONFIG: join(demo, 'home/etc/tandem/cluster.yaml'),
  TANDEM_NODE: 'demo1',
  // Final actions that would shut the machine down are only logged in the demo.
  TANDEM_OS_ACTIONS: 'dry-run',
};
const port = process.env.DEMO_PORT ?? '18080';
const pm2 = join(root, 'node_modules/.bin/pm2');
const cli = join(root, 'packages/cli/dist/main.js');

const run = (cmd, args, opts = {}) => spawnSync(cmd, args, { env, stdio: 'inherit', ...opts });
const tandem = (args, opts = {}) => run(process.execPath, [cli, ...args], opts);

function start() {
  mkdirSync(dirname(env.TANDEM_CONFIG), { recursive: true });
  const template = readFileSync(join(root, 'examples/demo/cluster.yaml'), 'utf8');
  writeFileSync(env.TANDEM_CONFIG, template.replaceAll('@APP@', join(root, 'examples/demo/app.mjs')).replaceAll('@PORT@', port));
  const started = run(pm2, ['start', join(root, 'ecosystem.config.js')], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (started.status !== 0) process.exit(started.status ?? 1);
  // Wait (bounded) until the group is online.
  const deadline = Date.now() + 30_000;
  let status;
  while (Date.now() < deadline) {
    const r = spawnSync(process.execPath, [cli, 'status', '--json', '--timeout', '1000'], { env, encoding: 'utf8' });
    if (r.status === 0) {
      status = JSON.parse(r.stdout);
      if (status.groups?.every((g) => g.state === 'online')) break;
    }
    spawnSync('sleep', ['0.3']);
  }
  tandem(['status']);
  const pid = status?.groups?.[0]?.resources?.[0]?.pid;
  console.log(`
The demo cluster runs (pm2 and Tandem state live in .demo/).

  npm run tandem -- status            the cluster, its group and monitors (add --watch or --json)
  curl http://127.0.0.1:${port}/       the demo application
  kill -9 ${pid ?? '<pid of app>'}                    kill the application...
  npm run tandem -- status --watch    ...and watch the app-alive monitor restart it
  npm run tandem -- events            the alert log
  npm run tandem -- group stop web    operate the group (start, stop, restart)
  PM2_HOME=.demo/pm2 npx pm2 logs     the daemons' logs (JSON lines: .demo/home/var/log/tandem/)
  npm stop                            stop the demo
`);
}

function stop() {
  if (!existsSync(join(demo, 'pm2'))) {
    console.log('the demo is not running');
    return;
  }
  // Stop the groups in order first, then the daemons (a planned stop: no emergency).
  const stopped = tandem(['cluster', 'stop', '--timeout', '60000'], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (stopped.status !== 0) console.error('the cluster service did not stop cleanly; stopping the daemons anyway');
  run(pm2, ['kill'], { stdio: ['ignore', 'ignore', 'inherit'] });
  console.log('demo stopped');
}

const [command, ...rest] = process.argv.slice(2);
if (command === 'start') start();
else if (command === 'stop') stop();
else if (command === 'cli') process.exit(tandem(rest).status ?? 1);
else {
  console.error('usage: demo.mjs start|stop|cli ARGS');
  process.exit(2);
}
