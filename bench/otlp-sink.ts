/** A stand-in for an OpenTelemetry collector: accepts OTLP/HTTP exports and drops them. */
import { createServer } from 'node:http';

let exports = 0;
createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    if (req.url === '/v1/traces') exports += 1;
    res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/x-protobuf' }).end(String(exports));
  });
}).listen(Number(process.argv[2]), '127.0.0.1');
