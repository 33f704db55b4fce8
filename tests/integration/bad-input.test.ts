// Bad input never kills a daemon (DESIGN.md section 2, invariant 4): random and truncated frames
// sent to every RPC socket get an error reply and change nothing; broken configurations start nothing.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import * as zmq from 'zeromq';
import { callOnce, isAlive, type DaemonName } from '@tandem/core';
import { decodeReply, encodeRequest, tandem } from '@tandem/protocol';
import { ROOT, TestServer } from '../helpers/server.mjs';

const server = new TestServer();
t.teardown(() => server.destroy());

const RPC_DAEMONS: DaemonName[] = ['nm', 'hb', 'rc', 'rm', 'md', 'guard'];
const ERROR = {
  BAD_REQUEST: tandem.v1.ErrorCode.ERROR_CODE_BAD_REQUEST,
  PROTOCOL_MISMATCH: tandem.v1.ErrorCode.ERROR_CODE_PROTOCOL_MISMATCH,
};

/** Sends frames on a fresh DEALER and returns the decoded reply (or undefined after timeoutMs). */
async function send(endpoint: string, frames: Buffer[], timeoutMs = 2000) {
  const dealer = new zmq.Dealer({ linger: 0, receiveTimeout: timeoutMs });
  dealer.connect(endpoint);
  try {
    await dealer.send(frames);
    const [reply] = await dealer.receive();
    const d = decodeReply(reply);
    return d.ok ? d.message : undefined;
  } catch {
    return undefined;
  } finally {
    dealer.close();
  }
}

t.test('random and truncated frames get BAD_REQUEST and every daemon stays up', async (t) => {
  await server.start();
  const valid = Buffer.from(encodeRequest({ id: 'x', ping: {} }));
  const pids = Object.fromEntries(RPC_DAEMONS.filter((d) => d !== 'guard').map((d) => [d, server.daemonPid(d)]));
  for (const d of RPC_DAEMONS) {
    const endpoint = server.paths.rpc(d);
    for (let i = 0; i < 20; i++) {
      const frame = i % 2 === 0 ? randomBytes(1 + ((i * 37) % 200)) : valid.subarray(0, 1 + (i % (valid.length - 1)));
      const reply = await send(endpoint, [frame]);
      // Random bytes may happen to decode into a request of another protocol revision: that is
      // answered PROTOCOL_MISMATCH; everything else that is not a whole request is BAD_REQUEST.
      t.ok(
        reply?.error?.code === ERROR.BAD_REQUEST || reply?.error?.code === ERROR.PROTOCOL_MISMATCH,
        `${d}: frame ${i} answered with an error (${reply?.error?.message ?? 'no reply'})`,
      );
    }
    const multi = await send(endpoint, [randomBytes(8), randomBytes(8)]);
    t.equal(multi?.error?.code, ERROR.BAD_REQUEST, `${d}: a multi-frame request is refused`);
    const old = await send(endpoint, [Buffer.from(tandem.v1.Request.encode({ id: 'y', revision: 99, ping: {} }).finish())]);
    t.equal(old?.error?.code, ERROR.PROTOCOL_MISMATCH, `${d}: another protocol revision is refused clearly`);
    const ping = await callOnce(endpoint, { ping: {} }, { timeoutMs: 2000 });
    t.equal(ping.daemon?.state, 'running', `${d} still answers`);
  }
  // Garbage on the guard's liveness sockets is dropped without harm too.
  for (const d of ['nm', 'rc'] as const) {
    const dealer = new zmq.Dealer({ linger: 0 });
    dealer.connect(server.paths.guardLive(d));
    for (let i = 0; i < 10; i++) await dealer.send(randomBytes(1 + i * 13));
    dealer.close();
  }
  const st = await server.status();
  for (const [d, pid] of Object.entries(pids)) t.ok(isAlive(pid), `${d} is still the same process`);
  t.equal(st.groups[0]?.state, 'online', 'the group was not touched');
  t.equal(st.daemons.find((x) => x.name === 'guard')?.state, 'running');
  t.notOk(server.emergencyRan(), 'no emergency');
});

t.test('wrong command arguments get one clear line and a non-zero exit', async (t) => {
  const r = await server.cli(['group', 'frobnicate', 'web']);
  t.equal(r.code, 2);
  t.ok(r.stderr.trim().length > 0);
  const m = await server.cli(['monitor', 'suspend', 'no-such-monitor']);
  t.equal(m.code, 1);
  t.match(m.stderr, /no-such-monitor/);
  t.equal((await server.status()).monitors[0]?.state !== 'suspended', true, 'nothing was suspended');
});

t.test('a broken configuration is refused with the path of the fault and nothing starts', async (t) => {
  server.pm2(['kill']);
  const path = server.env['TANDEM_CONFIG'] as string;
  const good = readFileSync(path, 'utf8');
  const broken: [string, string, RegExp][] = [
    ['a wrong type', good.replace('interval: 200ms', 'interval: 5'), /cluster\.heartbeat\.interval/],
    ['an unknown key', good.replace('name: test', 'name: test\n  colour: red'), /cluster: unknown key "colour"/],
    [
      'a duplicate name',
      good.replace('monitors:', '  - name: web\n    resources: []\nmonitors:'),
      /groups\[1\]\.name: duplicate group name "web"/,
    ],
    [
      'a dependency cycle',
      good.replace(
        'stopTimeout: 5s }',
        'stopTimeout: 5s, dependsOn: [b] }\n      - { name: b, type: exec, start: "true", dependsOn: [app] }',
      ),
      /dependency cycle/,
    ],
  ];
  for (const [what, text, expected] of broken) {
    writeFileSync(path, text);
    const r = server.pm2(['start', join(ROOT, 'ecosystem.config.js')]);
    const jlist = server.pm2(['jlist']);
    t.not(r.code, 0, `${what}: pm2 start fails`);
    t.match(r.stderr + r.stdout, expected, `${what}: the error names the path`);
    t.same(JSON.parse(jlist.stdout || '[]'), [], `${what}: no process was started`);
    const v = await server.cli(['config', 'validate', path]);
    t.equal(v.code, 1);
    t.match(v.stdout + v.stderr, expected);
  }
  writeFileSync(path, good);
});
