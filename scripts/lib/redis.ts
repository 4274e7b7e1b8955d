import type { Socket } from 'node:net';

/** As long as a readiness poll waits for one answer over HTTP (processes.ts): a frozen server is not up. */
const ANSWER_MS = 2000;

/**
 * Whether the Redis server at the other end of `socket` (just opened: plain or TLS) is up: its answer to
 * PING, sent after `AUTH password` when given, is +PONG, or -NOAUTH (up, but it wants a password this
 * probe did not give). The socket is closed either way. For the launcher's readiness wait and the tests'.
 */
export function answersPing(socket: Socket, password?: string): Promise<boolean> {
  // AUTH answers first: the PING's answer is the second line when there is one.
  const pingAnswer = password === undefined ? 0 : 1;
  return new Promise((resolve) => {
    const settle = (up: boolean) => {
      socket.destroy();
      resolve(up);
    };
    let received = '';
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString();
      const lines = received.split('\r\n');
      const answer = lines[pingAnswer];
      // Complete once a line break follows it.
      if (answer !== undefined && lines.length > pingAnswer + 1) settle(/^(\+PONG|-NOAUTH)/.test(answer));
    });
    socket.setTimeout(ANSWER_MS, () => settle(false));
    socket.once('error', () => settle(false));
    socket.once('close', () => settle(false));
    // Written at once: a socket still connecting (or still in its TLS handshake) sends it once it can.
    socket.write(`${password === undefined ? '' : `AUTH ${password}\r\n`}PING\r\n`);
  });
}
