/**
 * The floor of a held event stream, for the subscriptions section: a bare node:http server that answers
 * every request (but GET /health) with an event stream's head and holds it open, nothing else.
 * `held-streams.ts <port>`.
 */
import { createServer, type ServerResponse } from 'node:http';

const held = new Set<ServerResponse>();
const server = createServer((req, res) => {
  req.resume();
  if (req.url === '/health') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.flushHeaders();
  held.add(res);
  res.once('close', () => held.delete(res));
});
server.listen(Number(process.argv[2]), '127.0.0.1');
process.on('disconnect', () => process.exit(0));
