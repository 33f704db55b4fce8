import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { callOnce, readAlerts, resolvePaths, sleep, type Paths } from '@tandem/core';
import type { ServerStatus } from '@tandem/protocol';

const HB_MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

const config = `cluster: { name: demo, secret: not-so-secret, heartbeat: { interval: 100ms, timeout: 600ms, port: 39471 }, emergency: { action: stop-services } }
servers:
  - { name: node1, interconnects: [127.0.0.6, 127.0.0.8] }
  - { name: node2, interconnects: [127.0.0.7, 127.0.0.9] }
`;

async function until(what: string, ok: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function startHb(t: Test, dir: string, node: string): { child: ChildProcess; paths: Paths } {
  const env = { ...process.env, TANDEM_HOME: join(dir, node), TANDEM_CONFIG: join(dir, 'cluster.yaml'), TANDEM_NODE: node };
  const child = spawn(process.execPath, [HB_MAIN], { env, stdio: 'ignore' });
  t.teardown(() => void child.kill('SIGKILL'));
  return { child, paths: resolvePaths(env) };
}

async function servers(paths: Paths): Promise<ServerStatus[]> {
  try {
    const reply = await callOnce(paths.rpc('hb'), { status: {} }, { timeoutMs: 1000 });
    return reply.servers?.servers ?? [];
  } catch {
    return [];
  }
}

const summary = (list: ServerStatus[]): string[] =>
  list.map((s) => `${s.name} ${s.state}${s.local ? ' local' : ''} ${s.paths.map((p) => p.state).join(',')}`);

t.test('two heartbeat daemons see each other on both paths, and one reports the other offline when it stops', async (t) => {
  const dir = mkdtempSync('/tmp/tnd-hb.');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'cluster.yaml'), config);
  const node1 = startHb(t, dir, 'node1');
  const node2 = startHb(t, dir, 'node2');

  await until('node1 to hear node2 on both paths', async () => summary(await servers(node1.paths)).includes('node2 online up,up'));
  const status = await servers(node1.paths);
  t.same(summary(status), ['node1 online local up,up', 'node2 online up,up']);
  t.equal(Number(status[0]?.incarnation), 1, 'the first start is incarnation 1');
  t.equal(Number(status[1]?.incarnation), 1);
  t.same(
    status[1]?.paths.map((p) => p.address),
    ['127.0.0.7', '127.0.0.9'],
  );

  node2.child.kill('SIGTERM');
  await until('node1 to report node2 offline', async () => summary(await servers(node1.paths)).includes('node2 offline down,down'));
  const alerts = readAlerts(node1.paths.alerts).map((a) => `${a.id} ${a.message}`);
  t.ok(alerts.includes('TND-HB-0302 interconnect path 1 to node2 (127.0.0.9) is up'), 'a path up is an alert');
  t.ok(alerts.includes('TND-HB-0301 interconnect path 0 to node2 (127.0.0.7) is down'), 'a path down is an alert');
  await t.rejects(callOnce(node1.paths.rpc('hb'), { events: {} }, { timeoutMs: 1000 }), { code: 'BAD_REQUEST' }, 'hb serves status only');
});
