import { spawn, execFile } from 'node:child_process';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import t from 'tap';
// Until index.ts re-exports the witness, the test reads it from the build directly.
import { decideLease, parseLeaseRequest, startWitness, type WitnessLease } from '../dist/witness.js';

// The built command, as an operator runs it.
const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

// ---------------------------------------------------------------- the lease rule

const TTL = 30_000;
const held = (holder: string[], expiresAtMs: number): WitnessLease => ({ holder, expiresAtMs });

t.test('the lease goes to the first partition that asks, and only its members renew it', async (t) => {
  const cases: {
    name: string;
    current?: WitnessLease;
    server: string;
    members: string[];
    granted: boolean;
    holder: string[];
    renewed?: boolean;
  }[] = [
    { name: 'no lease yet: granted', server: 's1', members: ['s1', 's2'], granted: true, holder: ['s1', 's2'], renewed: false },
    {
      name: 'an expired lease: granted to anyone',
      current: held(['s1'], 1000),
      server: 's2',
      members: ['s2'],
      granted: true,
      holder: ['s2'],
      renewed: false,
    },
    {
      name: 'a holder member renews',
      current: held(['s1', 's2'], 2000),
      server: 's2',
      members: ['s1', 's2'],
      granted: true,
      holder: ['s1', 's2'],
      renewed: true,
    },
    {
      name: 'a holder member of a partition that split again takes it for its own half',
      current: held(['s1', 's2'], 2000),
      server: 's2',
      members: ['s2'],
      granted: true,
      holder: ['s2'],
      renewed: true,
    },
    {
      name: 'a server outside the holder is refused',
      current: held(['s1', 's2'], 2000),
      server: 's3',
      members: ['s3'],
      granted: false,
      holder: ['s1', 's2'],
    },
    {
      name: 'a partition overlapping the holder but asked by an outsider is refused',
      current: held(['s1'], 2000),
      server: 's3',
      members: ['s1', 's3'],
      granted: false,
      holder: ['s1'],
    },
  ];
  for (const c of cases) {
    const d = decideLease(c.current, { cluster: 'demo', server: c.server, members: c.members }, 1000, TTL);
    t.equal(d.granted, c.granted, `${c.name}: granted`);
    t.same(d.lease.holder, c.holder, `${c.name}: holder`);
    if (d.granted) {
      t.equal(d.lease.expiresAtMs, 1000 + TTL, `${c.name}: a grant lasts the TTL from now`);
      t.equal(d.renewed, c.renewed, `${c.name}: renewed`);
    } else t.equal(d.lease, c.current, `${c.name}: a refusal leaves the lease as it was`);
  }
});

t.test('a lease request needs a cluster, a server and members that include it', async (t) => {
  const cases: [string, string | object][] = [
    ['{"cluster":"demo","server":"s1","members":["s1","s2","s1"]}', { cluster: 'demo', server: 's1', members: ['s1', 's2'] }],
    ['nope', 'the body is not JSON'],
    ['[]', 'the body must be a JSON object {cluster, server, members}'],
    ['null', 'the body must be a JSON object {cluster, server, members}'],
    ['{"server":"s1","members":["s1"]}', 'cluster must be a name of 1 to 256 characters'],
    ['{"cluster":"demo","members":["s1"]}', 'server must be a name of 1 to 256 characters'],
    ['{"cluster":"demo","server":"s1"}', 'members must be a list of 1 to 256 server names'],
    ['{"cluster":"demo","server":"s1","members":[]}', 'members must be a list of 1 to 256 server names'],
    ['{"cluster":"demo","server":"s1","members":["s1",7]}', 'members must be a list of 1 to 256 server names'],
    ['{"cluster":"demo","server":"s1","members":["s2"]}', 'members must include the requesting server s1'],
    [`{"cluster":"${'x'.repeat(257)}","server":"s1","members":["s1"]}`, 'cluster must be a name of 1 to 256 characters'],
  ];
  for (const [body, expected] of cases) {
    const r = parseLeaseRequest(body);
    if (typeof expected === 'string') t.same(r, { error: expected }, body.slice(0, 60));
    else t.same(r, expected, body);
  }
});

// ---------------------------------------------------------------- the service over HTTP

interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: http.IncomingHttpHeaders;
}

function post(port: number, body: string, opts: { method?: string; path?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: opts.method ?? 'POST', path: opts.path ?? '/v1/lease', agent: false },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown>, headers: res.headers }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const ask = (port: number, server: string, members: string[], cluster = 'demo'): Promise<Answer> =>
  post(port, JSON.stringify({ cluster, server, members }));

async function witness(t: Tap.Test, ttlMs: number, clock: { now: number }): Promise<{ port: number; lines: string[] }> {
  const lines: string[] = [];
  const w = await startWitness({ port: 0, bind: '127.0.0.1', ttlMs, log: (l) => lines.push(l), now: () => clock.now });
  t.teardown(() => w.close());
  return { port: w.address.port, lines };
}

t.test('the witness grants, renews, refuses, and grants again once the lease expired', async (t) => {
  const clock = { now: 1_000_000 };
  const { port, lines } = await witness(t, 30_000, clock);

  t.same((await ask(port, 's1', ['s1', 's2'])).body, { granted: true, holder: ['s1', 's2'], expiresMs: 30_000 });
  clock.now += 10_000;
  const refused = await ask(port, 's3', ['s3']);
  t.equal(refused.status, 409);
  t.same(refused.body, { granted: false, holder: ['s1', 's2'], expiresMs: 20_000 });
  const renewed = await ask(port, 's2', ['s1', 's2']);
  t.equal(renewed.status, 200);
  t.same(renewed.body, { granted: true, holder: ['s1', 's2'], expiresMs: 30_000 }, 'a renewal starts a new TTL');
  t.same((await ask(port, 'other-cluster-server', ['other-cluster-server'], 'prod')).body.granted, true, 'one lease per cluster name');

  clock.now += 30_000;
  const after = await ask(port, 's3', ['s3']);
  t.equal(after.status, 200, 'an expired lease goes to whoever asks');
  t.same(after.body.holder, ['s3']);
  t.equal((await ask(port, 's1', ['s1', 's2'])).status, 409, 'the old holder is now refused');

  t.same(lines, [
    'cluster demo: lease granted to s1 for s1, s2 (30s)',
    'cluster demo: lease refused to s3 for s3: held by s1, s2 for 20000 ms more',
    'cluster demo: lease renewed by s2 for s1, s2 (30s)',
    'cluster prod: lease granted to other-cluster-server for other-cluster-server (30s)',
    'cluster demo: lease granted to s3 for s3 (30s)',
    'cluster demo: lease refused to s1 for s1, s2: held by s3 for 30000 ms more',
  ]);
});

t.test('bad requests get a one-line JSON error and change nothing', async (t) => {
  const clock = { now: 0 };
  const { port, lines } = await witness(t, 30_000, clock);
  const cases: [Promise<Answer>, number, RegExp][] = [
    [post(port, 'not json'), 400, /^the body is not JSON$/],
    [post(port, '{"cluster":"demo","server":"s1"}'), 400, /^members must be/],
    [post(port, '{"cluster":"demo","server":"s1","members":["s2"]}'), 400, /^members must include the requesting server s1$/],
    [post(port, '', { path: '/v2/lease' }), 404, /^no such path: \/v2\/lease/],
    [post(port, '', { method: 'GET' }), 405, /^GET is not allowed on \/v1\/lease/],
    [post(port, 'x'.repeat(64 * 1024 + 1)), 413, /^the body is larger than 65536 bytes$/],
  ];
  for (const [answer, status, error] of cases) {
    const a = await answer;
    t.equal(a.status, status, String(error));
    t.match(a.body.error, error);
    t.equal(Object.keys(a.body).length, 1, 'only the error');
  }
  t.equal(lines.length, cases.length, 'one log line per refused request');
  t.ok(lines.every((l) => l.startsWith('refused a bad request from 127.0.0.1: ')));
  t.equal((await ask(port, 's2', ['s2'])).status, 200, 'no lease was taken by a bad request');
});

t.test('a body too large sent without a length, and garbage that is not HTTP, do not stop the service', async (t) => {
  const clock = { now: 0 };
  const { port } = await witness(t, 30_000, clock);

  const chunked = await new Promise<number>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/lease', agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    for (let i = 0; i < 5; i++) req.write('y'.repeat(16 * 1024));
    req.end();
  });
  t.equal(chunked, 413);

  const raw = await new Promise<string>((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write('NOT HTTP AT ALL\r\n\r\n'));
    let text = '';
    socket.on('data', (c) => (text += c.toString()));
    socket.on('close', () => resolve(text));
    socket.on('error', () => resolve(text));
  });
  t.match(raw, /^HTTP\/1\.1 400 /);
  t.equal((await ask(port, 's1', ['s1'])).status, 200, 'the witness still answers');
});

t.test('a witness that cannot listen says why', async (t) => {
  const taken = net.createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => taken.close(() => r())));
  const port = (taken.address() as AddressInfo).port;
  await t.rejects(startWitness({ port, bind: '127.0.0.1', ttlMs: 1000, log: () => {} }), {
    code: 'CONFLICT',
    message: `cannot listen on 127.0.0.1:${port}: the address is in use`,
  });
});

// ---------------------------------------------------------------- the command

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

t.test('tandem witness serves leases that expire, logs each decision, and stops cleanly on SIGTERM', async (t) => {
  const child = spawn(process.execPath, [MAIN, 'witness', '--port', '0', '--bind', '127.0.0.1', '--ttl', '300ms'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
  });
  let stdout = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));

  const waitFor = async (re: RegExp): Promise<RegExpExecArray> => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const m = re.exec(stdout);
      if (m) return m;
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no ${re} in: ${stdout}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const port = Number((await waitFor(/witness listening on 127\.0\.0\.1:(\d+) \(lease ttl 300ms\)/))[1]);

  t.equal((await ask(port, 's1', ['s1'])).status, 200);
  const refused = await ask(port, 's2', ['s2']);
  t.equal(refused.status, 409, 'refused while the first lease is valid');
  // Once the 300 ms lease runs out, the other side gets it: poll for that with a bounded deadline.
  const deadline = Date.now() + 5000;
  let again = refused;
  while (again.status === 409 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    again = await ask(port, 's2', ['s2']);
  }
  t.equal(again.status, 200, 'granted to the other side after the TTL');
  t.same(again.body.holder, ['s2']);
  t.equal((await post(port, '{')).status, 400);

  child.kill('SIGTERM');
  t.equal(await exited, 0, 'exit 0 on SIGTERM');
  const lines = stdout.trim().split('\n');
  t.match(lines[0], /^\d{4}-\d\d-\d\dT\S+Z witness listening on /);
  t.match(lines[1], /cluster demo: lease granted to s1 for s1 \(300ms\)$/);
  t.match(lines[2], /cluster demo: lease refused to s2 for s2: held by s1 for \d+ ms more$/);
  t.match(stdout, /cluster demo: lease granted to s2 for s2 \(300ms\)\n/);
  t.match(stdout, /refused a bad request from 127\.0\.0\.1: 400 the body is not JSON\n/);
  t.match(lines[lines.length - 1], /witness stopped \(SIGTERM\)$/);
});

t.test('tandem witness refuses bad options (exit 2) and a port in use (exit 1), in one line', async (t) => {
  for (const args of [
    ['--ttl', 'soon'],
    ['--ttl', '50ms'],
    ['--port', '70000'],
    ['--port', 'x'],
  ]) {
    const r = await run(['witness', '--bind', '127.0.0.1', ...args]);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.stderr, /^tandem: --(ttl|port) .*\n$/);
  }
  const taken = net.createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => taken.close(() => r())));
  const port = (taken.address() as AddressInfo).port;
  const r = await run(['witness', '--bind', '127.0.0.1', '--port', String(port)]);
  t.equal(r.code, 1);
  t.equal(r.stderr, `tandem: cannot listen on 127.0.0.1:${port}: the address is in use\n`);
});
