/**
 * A minimal upstream for benchmarks: answers every request with the same small JSON movie. With a second
 * argument, GETs say that Cache-Control (a path under /ondemand/movies/long- is kept ten minutes) and
 * `GET /__calls` answers how many requests it had: what the gateway's caches spared it; with a third, a
 * GET is answered after that many milliseconds.
 */
import { createServer } from 'node:http';

const body = JSON.stringify({ id: 'm1', title: 'The Silent Harbor', year: 1975, genres: ['drama', 'comedy'], durationMinutes: 80, free: true });
const cacheControl = process.argv[3];
const delayMs = Number(process.argv[4] ?? 0);
let calls = 0;
const server = createServer((req, res) => {
  req.resume();
  if (req.url === '/__calls') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end(String(calls));
    return;
  }
  calls += 1;
  const caching = cacheControl && req.method === 'GET' ? { 'cache-control': req.url?.startsWith('/ondemand/movies/long-') ? 'public, max-age=600' : cacheControl } : {};
  const answer = () => res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...caching }).end(body);
  if (delayMs > 0 && req.method === 'GET') setTimeout(answer, delayMs);
  else answer();
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.argv[2]), '127.0.0.1');
process.on('disconnect', () => process.exit(0));
