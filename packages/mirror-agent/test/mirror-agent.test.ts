import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { callOnce, resolvePaths, sleep } from '@tandem/core';
import { v1 } from '@tandem/protocol';
import { MirrorAgent } from '@tandem/mirror-agent';

t.test('status says there are no mirrors and other requests are refused', async (t) => {
  const md = new MirrorAgent();
  t.same(await md.handle(v1.Request.create({ status: {} })), { ack: { message: 'no mirrors' } });
  await t.rejects(md.handle(v1.Request.create({ group: {} })), { code: 'BAD_REQUEST', message: 'tandem-md does not serve group' });
});

t.test('the daemon runs, registers with the guard and answers status', async (t) => {
  const dir = mkdtempSync('/tmp/tnd-md.');
  writeFileSync(join(dir, 'cluster.yaml'), 'cluster: { name: demo, emergency: { action: stop-services } }\nservers: [ { name: node1 } ]\n');
  const env = { ...process.env, TANDEM_HOME: dir, TANDEM_CONFIG: join(dir, 'cluster.yaml'), TANDEM_NODE: 'node1' };
  const paths = resolvePaths(env);
  const child = spawn(process.execPath, [fileURLToPath(new URL('../dist/main.js', import.meta.url))], { env, stdio: 'ignore' });
  t.teardown(() => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const end = Date.now() + 10_000;
  let reply;
  while (!reply) {
    try {
      reply = await callOnce(paths.rpc('md'), { status: {} }, { timeoutMs: 500 });
    } catch (err) {
      if (Date.now() > end) throw err;
      await sleep(20);
    }
  }
  t.equal(reply.ack?.message, 'no mirrors');
  t.ok(existsSync(join(paths.registry, 'md.json')), 'it is registered for the guard as a core daemon');
  child.kill('SIGTERM');
  await new Promise((r) => child.on('exit', r));
  t.equal(child.exitCode, 0, 'a planned stop exits 0');
  t.notOk(existsSync(join(paths.registry, 'md.json')), 'and removes its registration');
});
