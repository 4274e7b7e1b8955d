/** A minimal upstream for benchmarks: answers every request with the same small JSON movie. */
import { createServer } from 'node:http';

const body = JSON.stringify({ id: 'm1', title: 'The Silent Harbor', year: 1975, genres: ['drama', 'comedy'], durationMinutes: 80, free: true });
const server = createServer((req, res) => {
  req.resume();
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.argv[2]), '127.0.0.1');
process.on('disconnect', () => process.exit(0));
