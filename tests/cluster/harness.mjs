/**
 * A real Tandem cluster on one machine, for the cluster tests and the benchmarks (root only):
 * one network namespace per server, each with its own pm2 (PM2_HOME) and TANDEM_HOME, joined by
 * one bridge per interconnect, plus a client namespace on the first bridge.
 *
 *   bridge <p>b0 (10.71.1.0/24): s1 ic0 .11, s2 ic0 .12, s3 ic0 .13, client ic0 .100
 *   bridge <p>b1 (10.71.2.0/24): s1 ic1 .11, s2 ic1 .12, s3 ic1 .13
 *
 * The addresses exist only inside our namespaces (the bridges carry none in the root namespace),
 * so two runs with different prefixes do not see each other. Everything created is recorded and
 * removed by `destroy`, which is safe on a half-built cluster, on failure and when called twice;
 * it runs on process exit too. Only processes found in our namespaces are killed.
 */
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { callOnce, readAlerts, resolvePaths } from '@tandem/core';
import { ROOT, runProcess } from '../helpers/server.mjs';

const PM2 = join(ROOT, 'node_modules/.bin/pm2');
const CLI = join(ROOT, 'packages/cli/dist/main.js');
const ECOSYSTEM = join(ROOT, 'ecosystem.config.js');

/** tap's `skip` for every cluster scenario: they need root (network namespaces and bridges). */
export const ROOT_ONLY =
  process.getuid?.() !== 0 ? 'the cluster tests need root (network namespaces and bridges): run them as root, as CI does' : false;

/** The application's port inside each server namespace (every namespace has its own ports). */
export const APP_PORT = 38080;
const HEARTBEAT_PORT = 39102;
/** Interconnect i of server k (1-based) is 10.71.(i+1).(10+k); the client is .100 on the first. */
const SUBNETS = ['10.71.1', '10.71.2'];
const CLIENT_HOST = 100;

/** Simulates a power cut of one server namespace: its links down first, then every process in it killed. */
const POWER_CUT_SCRIPT = `#!/bin/sh
# usage: powercut.sh [NAMESPACE] (default: the namespace this script runs in)
ns=\${1:-$(ip netns identify $$)}
[ -n "$ns" ] || { echo "powercut: not in a named network namespace" >&2; exit 1; }
[ -n "$TANDEM_EMERGENCY_REASON" ] && echo "$TANDEM_EMERGENCY_REASON" >> "$(dirname "$0")/emergency.$ns"
for link in $(ip -n "$ns" -o link show | awk -F': ' '{ print $2 }' | cut -d@ -f1); do
  ip -n "$ns" link set "$link" down
done
# Killed processes take a moment to leave; one forked meanwhile is caught by the next round.
# Run inside the namespace, the first round kills this script too.
for round in $(seq 50); do
  pids=$(ip netns pids "$ns")
  [ -n "$pids" ] || exit 0
  kill -9 $pids 2>/dev/null
  sleep 0.02
done
echo "powercut: processes of $ns survived: $(ip netns pids "$ns" | tr '\\n' ' ')" >&2
exit 1
`;

/** The group's application: answers every HTTP request with the name of the server it runs on. */
const APP_SCRIPT = `import { createServer } from 'node:http';
const name = process.env.TANDEM_SERVER_NAME ?? 'unknown';
createServer((req, res) => res.end(name + '\\n')).listen(Number(process.env.APP_PORT), '0.0.0.0');
process.on('SIGTERM', () => process.exit(0));
`;

/**
 * @param {string[]} args
 * @param {{ allowFail?: boolean, timeoutMs?: number }} [opts]
 * @returns {{ code: number, stdout: string, stderr: string }}
 */
function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: opts.timeoutMs ?? 10_000 });
  const out = { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? r.error?.message ?? '' };
  if (out.code !== 0 && !opts.allowFail) throw new Error(`${cmd} ${args.join(' ')} failed (${out.code}): ${out.stderr.trim()}`);
  return out;
}

/** @returns {Set<string>} the names of the network namespaces and links that exist now */
function existingNames() {
  const ns = run('ip', ['netns', 'list'], { allowFail: true }).stdout;
  const links = run('ip', ['-o', 'link', 'show'], { allowFail: true }).stdout;
  return new Set([
    ...ns.split('\n').map((l) => l.split(' ')[0] ?? ''),
    ...links.split('\n').map((l) => (l.split(': ')[1] ?? '').split('@')[0] ?? ''),
  ]);
}

/** Pids of the processes in a network namespace (empty when it does not exist). */
export function namespacePids(ns) {
  return run('ip', ['netns', 'pids', ns], { allowFail: true })
    .stdout.split('\n')
    .map(Number)
    .filter((pid) => pid > 0);
}

export class TestCluster {
  /**
   * @param {{ servers?: number, heartbeatInterval?: string, heartbeatTimeout?: string, emergencyDeadline?: string, networkPartition?: string, groups?: string, monitors?: string }} [opts]
   *   networkPartition: YAML flow mapping for cluster.networkPartition (default: majority)
   *   groups/monitors: YAML for `groups:` and `monitors:` (default: group web with one async
   *   application bound to servers [s1], and a pid monitor on it); `{APP}` in groups stands for
   *   the path of the application that answers with its server's name
   */
  constructor(opts = {}) {
    if (process.getuid?.() !== 0) throw new Error('TestCluster needs root (network namespaces, bridges)');
    /** @type {string[]} namespaces we created, deleted by destroy */
    this.namespaces = [];
    /** @type {string[]} root-namespace links we created (bridges last), deleted by destroy */
    this.links = [];
    this.destroyed = false;
    /** whether this cluster holds the lock that lets one test cluster run at a time (start) */
    this.locked = false;
    // Exiting without the test's teardown, or interrupted (Ctrl-C, a CI timeout): remove what was
    // built, keeping the logs as for a failure, then end as the signal would.
    this.onExit = () => this.destroy({ planned: false, failed: true });
    process.once('exit', this.onExit);
    this.onSignal = (signal) => {
      this.destroy({ planned: false, failed: true });
      process.kill(process.pid, signal);
    };
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.once(signal, this.onSignal);

    this.prefix = pickPrefix();
    this.dir = mkdtempSync('/tmp/tc.');
    /** @type {string[]} */
    this.servers = Array.from({ length: opts.servers ?? 3 }, (_, i) => `s${i + 1}`);
    this.clientNs = `${this.prefix}c`;
    this.config = join(this.dir, 'cluster.yaml');
    this.powerCutScript = join(this.dir, 'powercut.sh');
    writeFileSync(this.powerCutScript, POWER_CUT_SCRIPT, { mode: 0o755 });
    writeFileSync(join(this.dir, 'app.mjs'), APP_SCRIPT);
    /** @type {Record<string, NodeJS.ProcessEnv>} */
    this.envs = {};
    for (const s of this.servers) {
      mkdirSync(join(this.dir, s, 'h'), { recursive: true });
      this.envs[s] = {
        ...process.env,
        PM2_HOME: join(this.dir, s, 'pm2'),
        TANDEM_HOME: join(this.dir, s, 'h'),
        TANDEM_CONFIG: this.config,
        TANDEM_NODE: s,
        TANDEM_OS_ACTIONS: 'dry-run',
      };
    }
    /** @type {Record<string, string>} each server's CURVE public key, made by `tandem keys generate` */
    this.publicKeys = {};
    for (const s of this.servers) {
      const r = spawnSync(process.execPath, [CLI, 'keys', 'generate'], { env: this.envs[s], encoding: 'utf8', timeout: 30_000 });
      if (r.status !== 0) throw new Error(`tandem keys generate for ${s} failed: ${r.stderr}`);
      this.publicKeys[s] = readFileSync(join(this.paths(s).state, 'curve.pub'), 'utf8').trim();
    }
    writeFileSync(this.config, this.#configText(opts));
  }

  /** The network namespace of a server. */
  ns(server) {
    return `${this.prefix}${server}`;
  }

  /** The address of a server's interconnect `i` (0-based, the heartbeat path index). */
  address(server, i) {
    return `${SUBNETS[i]}.${10 + this.servers.indexOf(server) + 1}`;
  }

  get clientAddress() {
    return `${SUBNETS[0]}.${CLIENT_HOST}`;
  }

  /** @returns {import('@tandem/core').Paths} */
  paths(server) {
    return resolvePaths(this.envs[server]);
  }

  /**
   * The heartbeat timeout is 2 s by default: the cluster tests share two cores with the unit tests,
   * and a daemon starved of CPU for half the timeout counts as stalled (the stall limit), which
   * fences its server. The benchmarks set their own figures on an otherwise idle machine.
   */
  #configText(opts) {
    const app = join(this.dir, 'app.mjs');
    return `cluster:
  name: ${this.prefix}
  secret: ${this.prefix}-heartbeat-key
  heartbeat: { interval: ${opts.heartbeatInterval ?? '200ms'}, timeout: ${opts.heartbeatTimeout ?? '2s'}, port: ${HEARTBEAT_PORT} }
  emergency: { action: exec, command: "sh ${this.powerCutScript}", deadline: ${opts.emergencyDeadline ?? '500ms'} }
  startupWait: 30s${
    opts.networkPartition
      ? `
  networkPartition: ${opts.networkPartition}`
      : ''
  }
servers:
${this.servers
  .map(
    (s) =>
      `  - { name: ${s}, interconnects: [${SUBNETS.map((_, i) => this.address(s, i)).join(', ')}], publicKey: "${this.publicKeys[s]}" }`,
  )
  .join('\n')}
groups:
${
  opts.groups?.replaceAll('{APP}', app) ??
  `  - name: web
    servers: [s1]
    resources:
      - { name: app, type: exec, mode: async, start: "exec node ${app}", env: { APP_PORT: "${APP_PORT}" }, stopTimeout: 5s }`
}
monitors:
${opts.monitors ?? '  - { name: app-alive, type: pid, target: app, interval: 500ms }'}
`;
  }

  /** Builds the bridges and namespaces; once per cluster (`start` calls it). */
  buildNetwork() {
    const bridges = SUBNETS.map((_, i) => `${this.prefix}b${i}`);
    for (const b of bridges) {
      run('ip', ['link', 'add', b, 'type', 'bridge']);
      this.links.push(b);
      run('ip', ['link', 'set', b, 'up']);
    }
    const attach = (ns, host, paths) => {
      run('ip', ['netns', 'add', ns]);
      this.namespaces.push(ns);
      run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      for (let i = 0; i < paths; i++) {
        const outside = `${ns}i${i}`;
        run('ip', ['link', 'add', outside, 'type', 'veth', 'peer', 'name', `ic${i}`, 'netns', ns]);
        this.links.unshift(outside);
        run('ip', ['link', 'set', outside, 'master', bridges[i] ?? '', 'up']);
        run('ip', ['-n', ns, 'addr', 'add', `${SUBNETS[i]}.${host}/24`, 'dev', `ic${i}`]);
        run('ip', ['-n', ns, 'link', 'set', `ic${i}`, 'up']);
      }
    };
    this.servers.forEach((s, k) => attach(this.ns(s), 10 + k + 1, SUBNETS.length));
    attach(this.clientNs, CLIENT_HOST, 1);
  }

  /**
   * Builds the network, starts every server's pm2 in its namespace and waits until every server is
   * online. One test cluster runs at a time on this machine (the others wait here, lock()): two of
   * them (some 40 processes) on two cores starve daemons past their stall limit, and the guard
   * fences servers for it, as it must.
   */
  async start(timeoutMs = 60_000) {
    await this.lock();
    this.buildNetwork();
    const started = await Promise.all(this.servers.map((s) => this.#inNamespace(s, [PM2, 'start', ECOSYSTEM], 60_000)));
    started.forEach((r, k) => {
      if (r.code !== 0) throw new Error(`pm2 start on ${this.servers[k]} failed: ${r.stderr}${r.stdout}`);
    });
    for (const s of this.servers) {
      await this.waitFor(`${s} to be online`, async () => (await this.status(s)).state === 'online', timeoutMs);
    }
  }

  /**
   * Takes the lock that lets one test cluster run at a time on this machine (start() does; a
   * caller that builds the network itself takes it first). Released by destroy. Waits at most
   * `timeoutMs` for another run's cluster.
   */
  async lock(timeoutMs = 15 * 60_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // The lock comes into being with its holder's pid in it: a directory made aside, then renamed.
      const made = mkdtempSync(`${CLUSTER_LOCK}.`);
      writeFileSync(join(made, 'pid'), `${process.pid}\n`);
      try {
        renameSync(made, CLUSTER_LOCK);
        this.locked = true;
        return;
      } catch (err) {
        rmSync(made, { recursive: true, force: true });
        if (err.code !== 'EEXIST' && err.code !== 'ENOTEMPTY') throw err;
      }
      // A holder that is gone (a test runner's timeout kills without an exit handler) leaves its lock.
      const holder = Number(readIfThere(join(CLUSTER_LOCK, 'pid')));
      if (holder > 0 && !processAlive(holder)) removeLock();
      if (Date.now() > deadline) throw new Error(`another test cluster (pid ${holder}) held ${CLUSTER_LOCK} for ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /**
   * Runs a command inside a server's namespace with that server's environment.
   * @returns {Promise<{ code: number, stdout: string, stderr: string }>}
   */
  #inNamespace(server, argv, timeoutMs) {
    return runProcess('ip', ['netns', 'exec', this.ns(server), ...argv], this.envs[server], timeoutMs);
  }

  /** pm2 of one server, run in its namespace. */
  pm2(server, args, timeoutMs = 60_000) {
    return this.#inNamespace(server, [PM2, ...args], timeoutMs);
  }

  /** The `tandem` command, run in a server's namespace. */
  cli(server, args, timeoutMs = 30_000) {
    return this.#inNamespace(server, [process.execPath, CLI, ...args], timeoutMs);
  }

  /** A server's `tandem status --json`, parsed. */
  async statusJson(server) {
    const r = await this.cli(server, ['status', '--json'], 10_000);
    if (r.code !== 0) throw new Error(`tandem status on ${server} failed (${r.code}): ${r.stderr.trim()}`);
    return JSON.parse(r.stdout);
  }

  /**
   * A server's status straight from its node manager (the ipc socket is a file: reachable from here).
   * @returns {Promise<import('@tandem/protocol').ClusterStatus>}
   */
  async status(server) {
    const reply = await callOnce(this.paths(server).rpc('nm'), { status: {} }, { timeoutMs: 2000, origin: 'test' });
    return reply.status;
  }

  /** How `server` sees `peer`: its state and the state of each path, from the node manager's status. */
  async peerView(server, peer) {
    const s = (await this.status(server)).servers.find((x) => x.name === peer);
    return { state: s?.state ?? 'missing', paths: (s?.paths ?? []).map((p) => p.state) };
  }

  alerts(server) {
    return readAlerts(this.paths(server).alerts, 10_000);
  }

  /** The text of a daemon's log on a server ('' when there is none yet). */
  daemonLog(server, daemon) {
    const file = join(this.paths(server).logs, `${daemon}.log`);
    return existsSync(file) ? readFileSync(file, 'utf8') : '';
  }

  /** The reasons the emergency procedure gave on a server (empty when it never ran). */
  emergencies(server) {
    const file = join(this.dir, `emergency.${this.ns(server)}`);
    return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
  }

  /** Whether a server's interface carries an IPv4 address (a floating IP, say). */
  hasAddress(server, ifname, ip) {
    const r = run('ip', ['-n', this.ns(server), '-o', '-4', 'addr', 'show', 'dev', ifname], { allowFail: true });
    return r.code === 0 && r.stdout.includes(` ${ip}/`);
  }

  /** The pid of a daemon ('nm', 'rc', …) on a server, from its node manager's status (0 when unknown). */
  async daemonPid(server, daemon) {
    const d = (await this.status(server)).daemons.find((x) => x.name === daemon || x.name === `tandem-${daemon}`);
    return d?.pid ?? 0;
  }

  /** Sets a server's interconnect `i` (0-based) down, inside its namespace. */
  linkDown(server, i) {
    run('ip', ['-n', this.ns(server), 'link', 'set', `ic${i}`, 'down']);
  }

  linkUp(server, i) {
    run('ip', ['-n', this.ns(server), 'link', 'set', `ic${i}`, 'up']);
  }

  /** The power cut of a server: its links down, every process in its namespace killed (the emergency action's script). */
  powerCut(server) {
    run('sh', [this.powerCutScript, this.ns(server)]);
  }

  /**
   * Brings a server back after a power cut: its links up, then its pm2 and daemons started again
   * (a new incarnation). A server that went down without a clean stop waits, isolated, for
   * `tandem node return`: run from another server here, unless `autoReturn` is set in the
   * configuration. Resolves once its cluster service is online, saying whether it had to return.
   * @returns {Promise<{ returned: boolean }>}
   */
  async powerOn(server, timeoutMs = 60_000) {
    const ns = this.ns(server);
    // /run is a tmpfs on a real server: a power cycle empties it (the daemon registry, the sockets).
    rmSync(this.paths(server).run, { recursive: true, force: true });
    // So does every address it had: the interfaces come back with their interconnect address only.
    run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    SUBNETS.forEach((_, i) => {
      run('ip', ['-n', ns, 'addr', 'flush', 'dev', `ic${i}`]);
      run('ip', ['-n', ns, 'addr', 'add', `${this.address(server, i)}/24`, 'dev', `ic${i}`]);
      run('ip', ['-n', ns, 'link', 'set', `ic${i}`, 'up']);
    });
    const r = await this.#inNamespace(server, [PM2, 'start', ECOSYSTEM], 60_000);
    if (r.code !== 0) throw new Error(`pm2 start on ${server} failed: ${r.stderr}${r.stdout}`);
    let state = '';
    await this.waitFor(
      `${server} to be isolated or online`,
      async () => ['isolated', 'online'].includes((state = (await this.status(server)).state)),
      timeoutMs,
    );
    if (state === 'online') return { returned: false };
    const peer = this.servers.find(
      (s) => s !== server && this.namespaces.includes(this.ns(s)) && pm2DaemonAlive(this.envs[s]?.PM2_HOME ?? ''),
    );
    if (!peer) throw new Error(`no server to run tandem node return ${server} from`);
    // The peer's link must reach the returning server first.
    let said = '';
    await this.waitFor(
      `tandem node return ${server} on ${peer}`,
      async () => {
        const back = await this.cli(peer, ['node', 'return', server]);
        said = `${back.stdout}${back.stderr}`;
        return back.code === 0;
      },
      timeoutMs,
    ).catch((err) => {
      throw new Error(`${err.message}: ${said.trim()}`);
    });
    await this.waitFor(`${server} to be online`, async () => (await this.status(server)).state === 'online', timeoutMs);
    return { returned: true };
  }

  /** Freezes every process of a server (SIGSTOP): the whole server stops, as a hung machine would. */
  freeze(server) {
    for (const pid of namespacePids(this.ns(server))) {
      try {
        process.kill(pid, 'SIGSTOP');
      } catch {
        // gone meanwhile
      }
    }
  }

  /** Lets a frozen server run again (SIGCONT). */
  thaw(server) {
    for (const pid of namespacePids(this.ns(server))) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // gone meanwhile
      }
    }
  }

  /**
   * Cuts the interconnects between `server` and the `others`, both ways, on every path (blackhole
   * routes to each other's interconnect addresses), while the client still reaches every server:
   * a split of the cluster network only. `heal` removes the routes.
   */
  isolate(server, others) {
    this.#routes('add', server, others);
  }

  heal(server, others) {
    this.#routes('del', server, others);
  }

  /**
   * A one-way loss: what `from` sends to `to` is dropped on every interconnect (blackhole routes
   * on `from`), while `to` still reaches `from`. `mendOneWay` removes the routes.
   */
  cutOneWay(from, to) {
    this.#blackholes('add', [[from, to]]);
  }

  mendOneWay(from, to) {
    this.#blackholes('del', [[from, to]]);
  }

  #routes(verb, server, others) {
    this.#blackholes(
      verb,
      others.flatMap((other) => [
        [server, other],
        [other, server],
      ]),
    );
  }

  #blackholes(verb, pairs) {
    for (const [from, to] of pairs) {
      SUBNETS.forEach((_, i) => {
        run('ip', ['-n', this.ns(from), 'route', verb, 'blackhole', `${this.address(to, i)}/32`], { allowFail: verb === 'del' });
      });
    }
  }

  /**
   * Runs `tandem witness` in the client namespace (it reaches every server's first interconnect,
   * as a third host on the servers' network would); returns its URL. Stopped by destroy.
   */
  async startWitness(port = 39100) {
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        this.clientNs,
        process.execPath,
        CLI,
        'witness',
        '--port',
        String(port),
        '--bind',
        this.clientAddress,
        '--ttl',
        '10s',
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    this.witnessLog = '';
    child.stdout.on('data', (d) => (this.witnessLog += d));
    child.stderr.on('data', (d) => (this.witnessLog += d));
    this.witness = child;
    await this.waitFor('the witness to listen', async () => this.witnessLog.includes('listening'), 15_000);
    return `http://${this.clientAddress}:${port}`;
  }

  /** Stops the witness as its supervisor would (SIGTERM) and waits until it has exited; its leases are gone with it. */
  async stopWitness() {
    const child = this.witness;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }

  /** The client namespace's neighbour table (ARP), one line per entry, each MAC named by its server, for a failure message. */
  clientNeighbours() {
    let text = run('ip', ['-n', this.clientNs, 'neigh', 'show'], { allowFail: true }).stdout.trim().replaceAll('\n', '; ');
    for (const s of this.servers) {
      const mac = /link\/ether (\S+)/.exec(run('ip', ['-n', this.ns(s), 'link', 'show', 'ic0'], { allowFail: true }).stdout)?.[1];
      if (mac) text = text.replaceAll(mac, `${mac} (${s})`);
    }
    return text;
  }

  /** An HTTP GET from the client namespace; resolves to the body, or throws. */
  async clientGet(url, timeoutMs = 2000) {
    const r = await new Promise((resolve) => {
      const child = spawn('ip', [
        'netns',
        'exec',
        this.clientNs,
        process.execPath,
        '-e',
        `fetch(process.argv[1], { signal: AbortSignal.timeout(${timeoutMs}) }).then(async (r) => process.stdout.write(await r.text()), (e) => { console.error([e.message, e.cause?.code, e.cause?.message].filter(Boolean).join(": ")); process.exit(1); })`,
        url,
      ]);
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs + 3000);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
    if (r.code !== 0) throw new Error(`GET ${url} from the client failed: ${r.stderr.trim()}`);
    return r.stdout;
  }

  async waitFor(what, cond, timeoutMs = 15_000) {
    const deadline = Date.now() + timeoutMs;
    let lastError;
    for (;;) {
      try {
        if (await cond()) return;
      } catch (err) {
        lastError = err;
      }
      if (Date.now() > deadline) {
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${lastError.message})` : ''}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /**
   * Stops every server's pm2 (a planned stop, all servers at once, bounded), kills whatever still
   * runs in our namespaces, deletes the namespaces, links and bridges we created and the
   * directory. Synchronous, so it also runs on process exit, where it skips the planned stop (a
   * test runner that timed out kills us within a second); safe on a half-built cluster and when
   * called twice.
   * @param {{ planned?: boolean, failed?: boolean }} [opts] failed: the tests failed; the logs are kept (#keep)
   */
  destroy(opts = {}) {
    if (this.destroyed) return;
    this.destroyed = true;
    process.removeListener('exit', this.onExit);
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.removeListener(signal, this.onSignal);
    // pm2 kill would start a new pm2 daemon where none runs (after a power cut): only where one does.
    const running = this.servers.filter((s) => this.namespaces.includes(this.ns(s)) && pm2DaemonAlive(this.envs[s]?.PM2_HOME ?? ''));
    if (opts.planned !== false && running.length > 0) {
      const script = running
        .map((_, k) => `ip netns exec "\${${2 * k + 2}}" env PM2_HOME="\${${2 * k + 3}}" "$1" kill >/dev/null 2>&1 &`)
        .join('\n');
      const args = running.flatMap((s) => [this.ns(s), this.envs[s]?.PM2_HOME ?? '']);
      spawnSync('sh', ['-c', `${script}\nwait`, 'pm2-kill', PM2, ...args], { timeout: 15_000, stdio: 'ignore' });
    }
    if (this.witness && this.witness.exitCode === null) this.witness.kill('SIGKILL');
    for (const ns of this.namespaces) {
      const deadline = Date.now() + 5000;
      for (let pids = namespacePids(ns); pids.length > 0 && Date.now() < deadline; pids = namespacePids(ns)) {
        for (const pid of pids) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
        spawnSync('sleep', ['0.05']);
      }
      run('ip', ['netns', 'del', ns], { allowFail: true });
    }
    for (const link of this.links) run('ip', ['link', 'del', link], { allowFail: true });
    this.namespaces = [];
    this.links = [];
    // TANDEM_TEST_KEEP=DIR keeps each server's logs and state (not its sockets) for a look
    // afterwards; a failed test run keeps them anyway (CI's clone is gone by the time anyone looks).
    const keep = process.env['TANDEM_TEST_KEEP'] ?? (opts.failed ? FAILED_RUNS_DIR : undefined);
    try {
      if (keep)
        this.#keep(join(keep, opts.failed ? `${new Date().toISOString().replace(/[:.]/g, '-')}-${this.prefix}` : this.prefix), opts.failed);
    } catch (err) {
      process.stderr.write(`# the cluster's logs could not be kept: ${err.message}\n`);
    }
    rmSync(this.dir, { recursive: true, force: true });
    if (this.locked) removeLock();
    this.locked = false;
  }

  /** Copies each server's logs and state to `into`; for a failed run, prints where, and what each server alerted. */
  #keep(into, failed) {
    for (const s of this.servers) {
      for (const part of ['var/log/tandem', 'var/lib/tandem']) {
        const from = join(this.dir, s, 'h', part);
        if (existsSync(from)) cpSync(from, join(into, s, part.split('/')[1] ?? part), { recursive: true });
      }
      mkdirSync(join(into, s), { recursive: true });
      const emergencies = this.emergencies(s);
      if (emergencies.length > 0) writeFileSync(join(into, s, 'emergencies'), `${emergencies.join('\n')}\n`);
    }
    if (!failed) return;
    const summary = this.servers.flatMap((s) => [
      `${s}:`,
      ...this.alerts(s)
        .slice(-25)
        .map((a) => `  ${new Date(a.timeMs).toISOString().slice(11, 23)} ${a.id} ${a.daemon}: ${a.message}`),
    ]);
    process.stderr.write(`# the cluster's logs and state are kept in ${into}; its last 25 alerts per server:\n# ${summary.join('\n# ')}\n`);
  }
}

/** Held (a directory, with the holder's pid) while a test cluster runs: see start(). */
const CLUSTER_LOCK = '/tmp/tandem-test-cluster.lock';

/**
 * Removes the lock in one step: renamed aside, then deleted. Deleted in place, it would be an
 * empty directory for a moment, and a waiter's rename onto an empty directory succeeds: that
 * waiter would hold a lock the remover then fails to delete (ENOTEMPTY, seen in CI). Two
 * waiters that find the same dead holder: one renames it aside, the other finds nothing (ENOENT).
 */
function removeLock() {
  const aside = `${CLUSTER_LOCK}.gone.${process.pid}.${Date.now()}`;
  try {
    renameSync(CLUSTER_LOCK, aside);
  } catch (err) {
    if (err.code === 'ENOENT') return;
    throw err;
  }
  rmSync(aside, { recursive: true, force: true });
}

function readIfThere(file) {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return '';
  }
}

function processAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

/** Where a failed test run's cluster logs stay (outside /tmp/tc.*, which each run removes). */
const FAILED_RUNS_DIR = '/var/tmp/tandem-test-failures';

/** `tc<pid % 1000>`, moved on while a namespace or link of that prefix exists (another run's, or a crashed one's). */
function pickPrefix() {
  const names = [...existingNames()];
  for (let n = process.pid % 1000, tries = 0; tries < 1000; n = (n + 1) % 1000, tries++) {
    const prefix = `tc${n}`;
    if (!names.some((name) => name.startsWith(prefix) && /^[a-z]/.test(name.slice(prefix.length)))) return prefix;
  }
  throw new Error('no free tc<n> prefix for the test cluster');
}

function pm2DaemonAlive(pm2Home) {
  try {
    const pid = Number(readFileSync(join(pm2Home, 'pm2.pid'), 'utf8'));
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
