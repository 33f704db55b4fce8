// pm2 process file for one Tandem server: `pm2 start ecosystem.config.js`.
// The five core daemons run with autorestart off: their death is the guard's business (an
// emergency shutdown of this server), never a silent restart. The guard is restarted by pm2.
// The configuration is validated before anything starts (scripts/preflight.mjs): a broken file
// starts nothing.
'use strict';
const { spawnSync } = require('node:child_process');
const { join } = require('node:path');

const root = __dirname;
const env = {
  // pm2 would otherwise parse every module's source map at load time (memory in each daemon).
  disable_source_map_support: 'true',
  TANDEM_HOME: process.env.TANDEM_HOME ?? '',
  TANDEM_CONFIG: process.env.TANDEM_CONFIG ?? join(process.env.TANDEM_HOME || '/', 'etc/tandem/cluster.yaml'),
  ...(process.env.TANDEM_NODE ? { TANDEM_NODE: process.env.TANDEM_NODE } : {}),
  ...(process.env.TANDEM_OS_ACTIONS ? { TANDEM_OS_ACTIONS: process.env.TANDEM_OS_ACTIONS } : {}),
  ...(process.env.TANDEM_LOG_LEVEL ? { TANDEM_LOG_LEVEL: process.env.TANDEM_LOG_LEVEL } : {}),
};

const check = spawnSync(process.execPath, [join(root, 'scripts/preflight.mjs')], { encoding: 'utf8', env: { ...process.env, ...env } });
let preflight;
try {
  preflight = JSON.parse(check.stdout);
} catch {
  throw new Error(`Tandem not started: the configuration check failed: ${(check.stderr || check.error?.message || '').trim()}`);
}
if (!preflight.ok) {
  throw new Error(`Tandem not started: configuration ${preflight.path} is invalid:\n  ${preflight.problems.join('\n  ')}`);
}

// The daemons hold small heaps: V8's size-optimised mode, a 1 MB young generation and no
// helper threads cut each process's memory by about 14 MB.
const node_args = ['--max-semi-space-size=1', '--optimize-for-size', '--single-threaded'];
// pm2's metrics agent (pmx) is not loaded into the daemons: Tandem reports its own state.
// treekill off: on a stop pm2 would otherwise signal every descendant of a daemon at once, and
// the resources' processes would die under their stop scripts; each daemon stops its own.
const lean = { node_args, pmx: false, automation: false, treekill: false };

const core = (name, pkg, extra = {}) => ({
  name,
  script: join(root, 'packages', pkg, 'dist/main.js'),
  cwd: root,
  exec_mode: 'fork',
  instances: 1,
  autorestart: false,
  kill_timeout: 30000,
  time: true,
  ...lean,
  env,
  ...extra,
});

module.exports = {
  apps: [
    {
      name: 'tandem-guard',
      script: join(root, 'packages/guard/dist/main.js'),
      cwd: root,
      exec_mode: 'fork',
      autorestart: true,
      restart_delay: 100,
      max_restarts: 1000,
      kill_timeout: 5000,
      time: true,
      ...lean,
      env,
    },
    core('tandem-nm', 'node-manager'),
    core('tandem-hb', 'heartbeat'),
    // Stopping the resource controller stops every group: pm2 waits as long as the stop scripts may take.
    core('tandem-rc', 'resource-controller', { kill_timeout: preflight.rcKillTimeoutMs }),
    core('tandem-rm', 'resource-monitor'),
    core('tandem-md', 'mirror-agent'),
  ],
};
