// Does a DEALER keep reconnecting after its CURVE handshake was refused by ZAP?
import * as zmq from 'zeromq';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const s = zmq.curveKeyPair(), c = zmq.curveKeyPair();
const EP = 'tcp://127.0.0.2:41791';
async function server(allow) {
  const context = new zmq.Context({ blocky: false });
  const zap = new zmq.Router({ context, linger: 0 });
  await zap.bind('inproc://zeromq.zap.01');
  (async () => { try { for await (const [id, d, v, rid, , , , , cred] of zap) {
    const ok = allow; console.log('zap', ok ? 'accept' : 'refuse');
    await zap.send([id, d, '1.0', rid, ok ? '200' : '400', ok ? 'OK' : 'no', '', '']); } } catch {} })();
  const r = new zmq.Router({ context, linger: 0, curveServer: true, curvePublicKey: s.publicKey, curveSecretKey: s.secretKey, zapDomain: 'x' });
  await r.bind(EP);
  (async () => { try { for await (const [id, m] of r) await r.send([id, m]); } catch {} })();
  return () => { r.close(); zap.close(); };
}
const d = new zmq.Dealer({ linger: 0, immediate: true, sendTimeout: 0, reconnectInterval: 100, reconnectMaxInterval: 1000, curveServerKey: s.publicKey, curvePublicKey: c.publicKey, curveSecretKey: c.secretKey });
d.events.on('handshake:error:auth', (e) => console.log('event auth error', e.error?.message));
d.events.on('handshake:error:protocol', (e) => console.log('event proto error'));
d.events.on('connect', () => console.log('event connect'));
d.events.on('handshake', () => console.log('event handshake ok'));
d.events.on('connect:retry', (e) => console.log('event retry', e.interval));
d.events.on('close', () => console.log('event close'));
d.events.on('disconnect', () => console.log('event disconnect'));
d.connect(EP);
let stop = await server(false);
await sleep(1500);
stop();
console.log('--- restart server, now accepting');
stop = await server(true);
const t0 = Date.now();
d.receiveTimeout = 200;
while (Date.now() - t0 < 8000) {
  try { await d.send('ping'); const [m] = await d.receive(); console.log('reply after', Date.now() - t0, 'ms', String(m)); break; }
  catch (e) { await sleep(200); }
}
console.log('done', Date.now() - t0);
stop(); d.close();
