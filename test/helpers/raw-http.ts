import { connect } from 'node:net';
import { within } from './wait.js';

export interface RawResponse {
  readonly status: number;
  readonly text: string;
}

/**
 * Sends one request with the target exactly as given (fetch and URL would normalise dot segments
 * and backslashes before sending, which is the very thing under test) and reads the status line;
 * `body`, when given, is sent with its Content-Length.
 */
export function rawGet(baseUrl: string, target: string, headers: Record<string, string> = {}, method = 'GET', body?: string): Promise<RawResponse> {
  const { port } = new URL(baseUrl);
  const sized = body === undefined ? headers : { ...headers, 'Content-Length': String(Buffer.byteLength(body)) };
  const head = [`${method} ${target} HTTP/1.1`, 'Host: gateway.test', 'Connection: close', ...Object.entries(sized).map(([name, value]) => `${name}: ${value}`)];
  const socket = connect(Number(port), '127.0.0.1', () => socket.write(`${head.join('\r\n')}\r\n\r\n${body ?? ''}`));
  const answered = new Promise<RawResponse>((resolve, reject) => {
    let text = '';
    socket.on('data', (chunk) => (text += chunk.toString('latin1')));
    socket.on('end', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text }));
    socket.on('error', reject);
  });
  return within(`the answer to ${method} ${target.slice(0, 80)}, and the connection closed`, answered).finally(() => socket.destroy());
}
