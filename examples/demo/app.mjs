// The demo application: a tiny HTTP service that answers with the server's name.
import { createServer } from 'node:http';

const port = Number(process.env.DEMO_PORT ?? 18080);
const server = process.env.TANDEM_SERVER_NAME ?? 'unknown';
createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(`hello from ${server} (pid ${process.pid}, started as ${process.env.TANDEM_EVENT ?? '?'})\n`);
}).listen(port, '127.0.0.1', () => console.log(`demo app listening on 127.0.0.1:${port}`));
process.on('SIGTERM', () => process.exit(0));
