import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { RpcServer, callOnce, createLogger, readAlerts, resolvePaths } from '@tandem/core';
import { v1, type Request } from '@tandem/protocol';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

t.test('the daemon restarts a dead resource process through rc and resets its counters once it is back', async (t) => {
  const home = mkdtempSync('/tmp/tnd.');
  const processes: ChildProcess[] = [];
  t.teardown(() => {
    for (const p of processes) p.kill('SIGKILL');
    rmSync(home, { recursive: true, force: true });
  });
  const config = join(home, 'cluster.yaml');
  writeFileSync(
    config,
    `cluster: { name: demo, heartbeat: { interval: 200ms, timeout: 2s, port: 39412 }, emergency: { action: exec, command: "true" } }
servers: [ { name: node1, interconnects: [127.0.0.1] } ]
groups:
  - name: web
    resources:
      - { name: app, type: exec, mode: async, start: "sleep 1000" }
monitors:
  - { name: app-alive, type: pid, target: app, interval: 100ms, timeout: 2s, retries: 1, recovery: { target: app, reactivations: 1, finalAction: stop-group } }
`,
  );
  const env = { ...process.env, TANDEM_HOME: home, TANDEM_CONFIG: config, TANDEM_NODE: 'node1' };
  const paths = resolvePaths(env);
  mkdirSync(paths.run, { recursive: true });

  // A stand-in for rc: one group whose resource is a real process; RESTART replaces the process.
  const startApp = (): number => {
    const p = spawn('sleep', ['60'], { stdio: 'ignore' });
    processes.push(p);
    return p.pid ?? 0;
  };
  let appPid = startApp();
  const commands: string[] = [];
  const rc = new RpcServer(
    paths.rpc('rc'),
    async (request: Request) => {
      if (request.body === 'status') {
        const app = { name: 'app', type: 'exec', state: 'online', pid: appPid, alive: true };
        return { groups: { groups: [{ name: 'web', state: 'online', server: 'node1', resources: [app] }] } };
      }
      if (request.body === 'resource') {
        const r = request.resource!;
        commands.push(`${v1.ResourceAction[r.action]} ${r.group}/${r.resource} ${v1.Cause[r.cause]}`);
        appPid = startApp();
        return { ack: {} };
      }
      commands.push(`${request.body}`);
      return { ack: {} };
    },
    createLogger({ daemon: 'fake-rc', server: 'node1', logsDir: join(home, 'fake-logs'), console: false }),
  );
  await rc.bind();
  t.teardown(() => rc.close());

  const rm = spawn(process.execPath, [MAIN], { env, stdio: 'ignore' });
  processes.push(rm);
  const rmExit = new Promise<number | null>((r) => rm.once('exit', r));
  t.teardown(async () => {
    rm.kill('SIGTERM');
    await rmExit;
  });
  await until(
    'tandem-rm to answer',
    async () => (await callOnce(paths.rpc('rm'), { ping: {} }).catch(() => undefined))?.daemon?.state === 'running',
  );

  const monitor = async () => (await callOnce(paths.rpc('rm'), { status: {} })).monitors?.monitors[0];
  t.match(await monitor(), { name: 'app-alive', state: 'off' }, 'monitors are off until nm activates the service');
  await callOnce(paths.rpc('rm'), { service: { action: v1.ServiceAction.SERVICE_ACTION_ACTIVATE, cause: v1.Cause.CAUSE_STARTUP } });
  await until('the monitor to be normal', async () => (await monitor())?.state === 'normal');

  const firstPid = appPid;
  processes[0]?.kill('SIGKILL');
  await until('rc to be asked for a restart', () => commands.length > 0);
  t.same(commands, ['RESOURCE_ACTION_RESTART web/app CAUSE_MONITOR']);
  t.not(appPid, firstPid, 'a new process runs');
  await until('the monitor to be normal again with its counters reset', async () => {
    const m = await monitor();
    return m?.state === 'normal' && m.reactivations === 0;
  });
  const ids = readAlerts(paths.alerts).map((a) => a.id);
  t.same(
    ids.filter((id) => id.startsWith('TND-RM')),
    ['TND-RM-0201', 'TND-RM-0204', 'TND-RM-0202'],
  );

  rm.kill('SIGTERM');
  t.equal(await rmExit, 0, 'tandem-rm stops cleanly on SIGTERM');
  t.notOk(existsSync(join(paths.registry, 'rm.json')), 'and leaves no registry entry');
});
