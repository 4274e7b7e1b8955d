/**
 * A pass-through proxy for benchmarks, in a process of its own (not on the event loop that parses the
 * streams being timed): `counting-proxy.ts <port> <target>` forwards every request to `target` and
 * counts it by method and path; `GET /__calls` answers the counts so far, as JSON.
 */
import { Agent, createServer, request } from 'node:http';

const target = new URL(process.argv[3] ?? '');
const agent = new Agent({ keepAlive: true });
const calls: Record<string, number> = {};
const server = createServer((req, res) => {
  if (req.url === '/__calls') {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(calls));
    return;
  }
  const route = `${req.method ?? ''} ${new URL(req.url ?? '/', 'http://proxy').pathname}`;
  calls[route] = (calls[route] ?? 0) + 1;
  const forwarded = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(res);
  });
  forwarded.on('error', () => res.destroy());
  req.pipe(forwarded);
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.argv[2]), '127.0.0.1');
process.on('disconnect', () => process.exit(0));
