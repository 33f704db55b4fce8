import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { isAlive, type MonitorConfig } from '@tandem/core';
import { customMonitor, httpMonitor, pidMonitor, processMonitor, tcpMonitor, type ResourceFacts } from '@tandem/resource-monitor';

const config = (over: Partial<MonitorConfig>): MonitorConfig => ({
  name: 'm',
  type: 'custom',
  intervalMs: 1000,
  timeoutMs: 5000,
  retries: 0,
  startDelayMs: 0,
  when: 'always',
  delayWarningPercent: 80,
  recovery: { target: 'server', kind: 'server', group: '', reactivations: 0, failovers: 0, finalAction: 'none' },
  ...over,
});

const never = new AbortController().signal;

async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function startProcess(t: { teardown(fn: () => void): void }, command: string, args: string[], argv0?: string): ChildProcess {
  const child = spawn(command, args, { stdio: 'ignore', ...(argv0 ? { argv0 } : {}) });
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  return child;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await gone;
}

t.test('a pid monitor is healthy while the resource process lives and fails once it is gone', async (t) => {
  const child = startProcess(t, 'sleep', ['30']);
  const app: ResourceFacts = { name: 'app', state: 'online', pid: child.pid ?? 0, alive: true };
  const monitor = pidMonitor(config({ type: 'pid', target: 'app' }), { resource: (name) => (name === 'app' ? app : undefined) });
  t.equal((await monitor.check(never)).ok, true);
  await stopProcess(child);
  const after = await monitor.check(never);
  t.equal(after.ok, false);
  t.match(after.message, /is gone/);
});

t.test('a pid monitor fails when rc reports no process or no resource here', async (t) => {
  const noPid = pidMonitor(config({ type: 'pid', target: 'app' }), {
    resource: () => ({ name: 'app', state: 'online', pid: 0, alive: false }),
  });
  t.match(await noPid.check(never), { ok: false, message: /has no process/ });
  const elsewhere = pidMonitor(config({ type: 'pid', target: 'app' }), { resource: () => undefined });
  t.match(await elsewhere.check(never), { ok: false, message: /not running on this server/ });
});

t.test('a process monitor counts processes by argv[0] and wants at least minCount', async (t) => {
  const name = `tnd-rm-probe-${process.pid}`;
  const one = startProcess(t, 'sleep', ['30'], name);
  await until('the probe process to show its argv[0]', () => {
    try {
      return readFileSync(`/proc/${one.pid}/cmdline`, 'utf8').startsWith(name);
    } catch {
      return false;
    }
  });
  t.match(await processMonitor(config({ type: 'process', processName: name, minCount: 1 })).check(never), {
    ok: true,
    message: /1 process named/,
  });
  t.match(await processMonitor(config({ type: 'process', processName: name, minCount: 2 })).check(never), {
    ok: false,
    message: /expected at least 2/,
  });
  await stopProcess(one);
  t.equal((await processMonitor(config({ type: 'process', processName: name })).check(never)).ok, false);
});

t.test('a process monitor also matches the kernel name in /proc/<pid>/comm', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tnd-rm-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const comm = `tndrm${process.pid % 100000}`;
  copyFileSync('/bin/sleep', join(dir, comm));
  const child = startProcess(t, join(dir, comm), ['30'], 'something-else');
  await until('the copy to run', () => {
    try {
      return readFileSync(`/proc/${child.pid}/comm`, 'utf8').trim() === comm;
    } catch {
      return false;
    }
  });
  t.equal((await processMonitor(config({ type: 'process', processName: comm })).check(never)).ok, true);
});

t.test('a custom monitor is healthy on exit 0 and reports the exit code and stderr otherwise', async (t) => {
  t.match(await customMonitor(config({ command: 'true' })).check(never), { ok: true });
  t.match(await customMonitor(config({ command: 'false' })).check(never), { ok: false, message: 'exit 1' });
  t.match(await customMonitor(config({ command: 'echo database down >&2; exit 3' })).check(never), {
    ok: false,
    message: 'exit 3: database down',
  });
});

t.test('a custom monitor reports the last line of a long stderr, read to its end', async (t) => {
  const noise = 'for i in $(seq 1 3000); do echo "noise line $i" >&2; done';
  t.match(await customMonitor(config({ command: `${noise}; echo database down >&2; exit 3` })).check(never), {
    ok: false,
    message: 'exit 3: database down',
  });
});

t.test('a custom check that leaves a child holding stderr answers at its exit and the child is ended', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tnd-rm-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pidFile = join(dir, 'child.pid');
  let timer: NodeJS.Timeout | undefined;
  const tooLong = new Promise((resolve) => (timer = setTimeout(() => resolve('no answer within 5 s'), 5000)));
  t.teardown(() => clearTimeout(timer));
  const check = customMonitor(config({ command: `sleep 30 & echo $! > ${pidFile}; echo gone >&2; exit 4` })).check(never);
  t.match(await Promise.race([check, tooLong]), { ok: false, message: 'exit 4: gone' });
  const childPid = Number(readFileSync(pidFile, 'utf8'));
  t.teardown(() => {
    if (isAlive(childPid)) process.kill(childPid, 'SIGKILL');
  });
  await until('the background child to be gone', () => !isAlive(childPid));
  t.pass('the background child is gone');
});

t.test('a custom check killed at its timeout takes its whole process group with it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tnd-rm-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pidFile = join(dir, 'child.pid');
  const abort = new AbortController();
  const check = customMonitor(config({ command: `sleep 30 & echo $! > ${pidFile}; wait` })).check(abort.signal);
  let childPid = 0;
  await until('the script to start its child', () => {
    try {
      childPid = Number(readFileSync(pidFile, 'utf8'));
      return childPid > 0;
    } catch {
      return false;
    }
  });
  t.teardown(() => {
    if (isAlive(childPid)) process.kill(childPid, 'SIGKILL');
  });
  abort.abort();
  t.match(await check, { ok: false, message: /killed at its timeout/ });
  await until('the background child to be gone', () => !isAlive(childPid));
  t.pass('the background child is gone');
});

t.test('an http monitor compares the status code and fails on a refused connection', async (t) => {
  const server = createHttpServer((req, res) => {
    if (req.url === '/hang') return; // never answers
    res.statusCode = req.url === '/ok' ? 200 : 503;
    res.end('body');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.match(await httpMonitor(config({ type: 'http', url: `${base}/ok`, expectStatus: 200 })).check(never), { ok: true });
  t.match(await httpMonitor(config({ type: 'http', url: `${base}/bad`, expectStatus: 200 })).check(never), {
    ok: false,
    message: /503, expected 200/,
  });
  t.match(await httpMonitor(config({ type: 'http', url: `${base}/bad`, expectStatus: 503 })).check(never), { ok: true });

  const abort = new AbortController();
  const hanging = httpMonitor(config({ type: 'http', url: `${base}/hang`, expectStatus: 200 })).check(abort.signal);
  abort.abort();
  t.match(await hanging, { ok: false, message: /failed/ });

  const closed = createTcpServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const freePort = (closed.address() as AddressInfo).port;
  await new Promise((r) => closed.close(r));
  t.match(await httpMonitor(config({ type: 'http', url: `http://127.0.0.1:${freePort}/`, expectStatus: 200 })).check(never), {
    ok: false,
    message: /ECONNREFUSED/,
  });
});

t.test('an http monitor closes the connection once it has the status, however long the body', async (t) => {
  let closed = 0;
  const server = createHttpServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    const drip = setInterval(() => res.write('still streaming\n'), 20);
    req.socket.on('close', () => {
      clearInterval(drip);
      closed++;
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/stream`;
  const monitor = httpMonitor(config({ type: 'http', url, expectStatus: 200 }));
  t.match(await monitor.check(never), { ok: true, message: /: 200/ });
  t.match(await monitor.check(never), { ok: true });
  await until('the server to see both connections closed', () => closed === 2);
  t.equal(closed, 2);
});

t.test('a tcp monitor is healthy while a listener accepts and fails once it is closed', async (t) => {
  const server = createTcpServer((socket) => socket.destroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const monitor = tcpMonitor(config({ type: 'tcp', host: '127.0.0.1', port }));
  t.match(await monitor.check(never), { ok: true, message: `connected to 127.0.0.1:${port}` });
  await new Promise((r) => server.close(r));
  t.match(await monitor.check(never), { ok: false, message: /ECONNREFUSED/ });
});
