/**
 * A real one-server Tandem under a private pm2 (temporary PM2_HOME and TANDEM_HOME), for the
 * process-tree tests and the benchmarks. Everything it starts is stopped and removed by `destroy`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { callOnce, isAlive, readAlerts, readLedger, resolvePaths, signalGroup } from '@tandem/core';

export const ROOT = join(import.meta.dirname, '..', '..');
const PM2 = join(ROOT, 'node_modules/.bin/pm2');
const CLI = join(ROOT, 'packages/cli/dist/main.js');

let portSeed = 30000 + (process.pid % 10000) * 2;
export const freePort = () => (portSeed = portSeed >= 65000 ? 30001 : portSeed + 1);

/**
 * Runs a command to its end, collecting its output; killed with SIGKILL after timeoutMs.
 * @returns {Promise<{ code: number, stdout: string, stderr: string }>}
 */
export function runProcess(command, args, env, timeoutMs) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

export class TestServer {
  /**
   * @param {{ groups?: string, resources?: string, monitors?: string, heartbeatInterval?: string, heartbeatTimeout?: string, stallLimit?: string, emergencyAction?: string }} opts
   *   YAML for `groups:` and `monitors:` (default: group web with one async app, plus `resources`,
   *   and a pid monitor), and cluster settings
   */
  constructor(opts = {}) {
    this.dir = mkdtempSync('/tmp/tnd.');
    const home = join(this.dir, 'h');
    this.marker = join(this.dir, 'emergency.marker');
    /** while this file exists, the default application fails at once when started */
    this.broken = join(this.dir, 'broken');
    this.appPort = freePort();
    this.env = {
      ...process.env,
      PM2_HOME: join(this.dir, 'pm2'),
      TANDEM_HOME: home,
      TANDEM_CONFIG: join(home, 'etc/tandem/cluster.yaml'),
      TANDEM_NODE: 'node1',
      TANDEM_OS_ACTIONS: 'dry-run',
    };
    this.paths = resolvePaths(this.env);
    mkdirSync(join(home, 'etc/tandem'), { recursive: true });
    const app = join(ROOT, 'examples/demo/app.mjs');
    writeFileSync(
      this.env.TANDEM_CONFIG,
      `cluster:
  name: test
  heartbeat: { interval: ${opts.heartbeatInterval ?? '200ms'}, timeout: ${opts.heartbeatTimeout ?? '2s'}, port: ${freePort()} }
  emergency: { action: ${opts.emergencyAction ?? 'exec'}, command: "echo \\"$TANDEM_EMERGENCY_REASON\\" >> ${this.marker}", deadline: 300ms }
${opts.stallLimit ? `  stallLimit: ${opts.stallLimit}\n` : ''}servers:
  - name: node1
    interconnects: [127.0.0.1]
groups:
${
  opts.groups ??
  `  - name: web
    resources:
      - { name: app, type: exec, mode: async, start: "test -e ${this.broken} && exit 3; exec node ${app}", env: { DEMO_PORT: "${this.appPort}" }, stopTimeout: 5s }${
        opts.resources ? `\n      - ${opts.resources}` : ''
      }`
}
monitors:
${opts.monitors ?? `  - { name: app-alive, type: pid, target: app, interval: 200ms, startDelay: 1s, recovery: { target: web, reactivations: 2, finalAction: stop-group } }`}
`,
    );
  }

  /** @returns {{ code: number, stdout: string, stderr: string }} */
  pm2(args) {
    const r = spawnSync(PM2, args, { env: this.env, encoding: 'utf8', timeout: 120_000 });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  }

  /** Starts the whole process tree with pm2 and waits until the cluster service is online. */
  async start() {
    const r = this.pm2(['start', join(ROOT, 'ecosystem.config.js')]);
    if (r.code !== 0) throw new Error(`pm2 start failed: ${r.stderr}${r.stdout}`);
    await this.waitFor('the cluster service to be online', async () => (await this.status()).state === 'online', 30_000);
  }

  /** Stops the Tandem apps in a planned way (SIGINT to each, the way `npm stop` does). */
  plannedStop() {
    return this.pm2(['delete', join(ROOT, 'ecosystem.config.js')]);
  }

  /** @returns {Promise<{ code: number, stdout: string, stderr: string }>} */
  cli(args, timeoutMs = 60_000) {
    return runProcess(process.execPath, [CLI, ...args], this.env, timeoutMs);
  }

  /** @returns {Promise<import('@tandem/protocol').ClusterStatus>} */
  async status() {
    const reply = await callOnce(this.paths.rpc('nm'), { status: {} }, { timeoutMs: 2000, origin: 'test' });
    return reply.status;
  }

  async tryStatus() {
    try {
      return await this.status();
    } catch {
      return undefined;
    }
  }

  /** The pid of a core daemon, from the registry file it writes at start. */
  daemonPid(name) {
    return JSON.parse(readFileSync(join(this.paths.registry, `${name}.json`), 'utf8')).pid;
  }

  async appPid(group = 'web', resource = 'app') {
    const st = await this.status();
    return st.groups.find((g) => g.name === group)?.resources.find((r) => r.name === resource)?.pid ?? 0;
  }

  alerts() {
    return readAlerts(this.paths.alerts, 10_000);
  }

  /** True once the emergency action has written its reason (the file exists before the echo writes). */
  emergencyRan() {
    return existsSync(this.marker) && readFileSync(this.marker, 'utf8').trim().length > 0;
  }

  async waitFor(what, cond, timeoutMs = 15_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        if (await cond()) return;
      } catch {
        // not yet
      }
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Stops pm2 and everything Tandem started, then removes the directory. Safe to call twice. */
  destroy() {
    if (!existsSync(this.dir)) return;
    this.pm2(['kill']);
    for (const entry of readLedger(this.paths.ledger)) signalGroup(entry.pgid, 'SIGKILL');
    try {
      for (const f of readdirSync(this.paths.registry)) {
        const pid = JSON.parse(readFileSync(join(this.paths.registry, f), 'utf8')).pid;
        if (isAlive(pid)) process.kill(pid, 'SIGKILL');
      }
    } catch {
      // no registry
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
