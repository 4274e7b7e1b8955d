/**
 * The image's HEALTHCHECK (Docker, Compose): exits 0 when `/health` answers 200 within 3 s, else 1 —
 * Node is in the image, curl is not. Usage: node dist/scripts/healthcheck.js [url]; without one, the
 * gateway on this container's PORT.
 */
import { get } from 'node:http';

const url = process.argv[2] ?? `http://127.0.0.1:${process.env.PORT ?? '4000'}/health`;
const request = get(url, { timeout: 3000 }, (response) => {
  response.resume();
  process.exit(response.statusCode === 200 ? 0 : 1);
});
request.on('timeout', () => request.destroy(new Error(`no answer from ${url} within 3 s`)));
request.on('error', (error) => {
  console.error(`healthcheck: ${error.message}`);
  process.exit(1);
});
