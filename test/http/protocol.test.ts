/** HTTP edges, from the client's side and the upstream's, each answered as its RFC says. */
import { connect, createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useStack } from '../helpers/stack.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { graphql, onlyError } from '../helpers/graphql.js';
import { signToken, TEST_SECRET } from '../helpers/tokens.js';
import { eventually, within } from '../helpers/wait.js';

const fx = useStack({ env: { REQUEST_HEAD_TIMEOUT_MS: '400', REQUEST_BODY_IDLE_TIMEOUT_MS: '400', REQUEST_BODY_TIMEOUT_MS: '5000', BODY_LIMIT_BYTES: '200000' } });
let token: string;

beforeAll(async () => {
  token = await signToken({ sub: '42', roles: ['user'] });
});

interface RawExchange {
  /** Everything the gateway sent before it closed the connection. */
  readonly text: string;
  readonly status: number;
}

/**
 * Opens a connection, writes `parts` one after another (each after the gateway has read the one
 * before, or right away), and answers what came back once the gateway closed the connection.
 */
function raw(baseUrl: string, first: string, then?: (socket: ReturnType<typeof connect>, received: () => string) => void): Promise<RawExchange> {
  const { port } = new URL(baseUrl);
  let text = '';
  const socket = connect(Number(port), '127.0.0.1', () => {
    if (first !== '') socket.write(first);
    then?.(socket, () => text);
  });
  const closed = new Promise<RawExchange>((resolve, reject) => {
    socket.on('data', (chunk) => (text += chunk.toString('latin1')));
    socket.on('close', () => resolve({ text, status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0) }));
    socket.on('error', reject);
  });
  return within(() => `the gateway to close the connection (it sent ${JSON.stringify(text.slice(0, 120))})`, closed).finally(() => socket.destroy());
}

describe('a slow or idle client', () => {
  it('that never sends a byte is closed without a word', async () => {
    const answer = await raw(fx.gateway.url, '');
    expect(answer.text).toBe('');
  });

  it('that stalls in its request head gets a 408 problem', async () => {
    const answer = await raw(fx.gateway.url, 'GET /users/me HTTP/1.1\r\nHost: x\r\n');
    expect(answer.status).toBe(408);
    expect(answer.text).toContain('"code":"REQUEST_TIMEOUT"');
    expect(fx.upstreams.all()).toHaveLength(0);
  });

  it('that stalls in a small body gets a 408, and its request never reached an upstream', async () => {
    const answer = await raw(fx.gateway.url, `POST /users/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Length: 100\r\n\r\n{"a":`);
    expect(answer.status).toBe(408);
    expect(answer.text).toMatch(/connection: close/i);
    expect(fx.upstreams.all()).toHaveLength(0);
  });

  it('that stalls in a streamed upload gets a 408, and the upstream call is abandoned', async () => {
    // How each upload the upstream received ended: 'abandoned' when its connection closed before the body's end.
    const endings: string[] = [];
    fx.upstreams.upstreams.users.behaviour = (req) => {
      const index = endings.push('open') - 1;
      req.on('close', () => (endings[index] = req.complete ? 'complete' : 'abandoned'));
    };
    const answer = await raw(fx.gateway.url, `PUT /users/upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Length: 150000\r\n\r\n${'x'.repeat(70_000)}`);
    expect(answer.status).toBe(408);
    await eventually(() => `every upload the upstream received abandoned (${endings.join(', ') || 'none'})`, () => endings.length > 0 && endings.every((ending) => ending === 'abandoned'));
  });

  it('may trickle a small body by the hundred without holding an upstream connection: a normal login still goes through', async () => {
    const trickling = Array.from({ length: 100 }, () => {
      const { port } = new URL(fx.gateway.url);
      const socket = connect(Number(port), '127.0.0.1', () => socket.write('POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{'));
      socket.on('error', () => undefined);
      return socket;
    });
    try {
      const login = await fetch(`${fx.gateway.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"username":"alice","password":"alice-password"}' });
      expect(login.status).toBe(200);
      expect(fx.upstreams.upstreams.auth.requests.map((request) => request.body.toString())).toEqual(['{"username":"alice","password":"alice-password"}']);
    } finally {
      for (const socket of trickling) socket.destroy();
    }
  });
});

describe('a client that asks Expect: 100-continue', () => {
  it('is refused with 413 before any 100 Continue when the declared body is over the limit', async () => {
    const answer = await raw(fx.gateway.url, `POST /users/upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nExpect: 100-continue\r\nContent-Length: 300000\r\n\r\n`);
    expect(answer.text).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer.text).not.toContain('100 Continue');
  });

  it('is refused with 401 before any 100 Continue without a token', async () => {
    const answer = await raw(fx.gateway.url, 'POST /users/upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n');
    expect(answer.text).toMatch(/^HTTP\/1\.1 401 /);
    expect(answer.text).not.toContain('100 Continue');
  });

  it('is told to continue once nothing can refuse it, and its body is forwarded', async () => {
    const answer = await raw(fx.gateway.url, `POST /users/upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n`, (socket, received) => {
      const check = setInterval(() => {
        if (!received().startsWith('HTTP/1.1 100 Continue')) return;
        clearInterval(check);
        socket.write('hello');
      }, 5);
      socket.on('close', () => clearInterval(check));
    });
    expect(answer.text).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    expect(fx.upstreams.upstreams.users.requests[0]?.body.toString()).toBe('hello');
  });
});

describe('a malformed request', () => {
  it('with two Host headers is 400', async () => {
    const answer = await raw(fx.gateway.url, `GET /users/me HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`);
    expect(answer.status).toBe(400);
    expect(fx.upstreams.all()).toHaveLength(0);
  });

  it('with a target over 8 KiB is 414, on REST and GraphQL', async () => {
    const long = 'a'.repeat(9000);
    for (const target of [`/users/${long}`, `/graphql?query=${long}`]) {
      const answer = await raw(fx.gateway.url, `GET ${target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`);
      expect(answer.status, target.slice(0, 20)).toBe(414);
    }
    expect(fx.upstreams.all()).toHaveLength(0);
  });

  it('with identity headers spelled with underscores has them dropped', async () => {
    await fetch(`${fx.gateway.url}/users/me`, { headers: { authorization: `Bearer ${token}`, x_user_id: '1', x_user_roles: 'admin', x_request_id: 'forged' } });
    const headers = fx.upstreams.upstreams.users.requests[0]?.headers ?? {};
    expect(Object.keys(headers).filter((name) => name.includes('_'))).toEqual([]);
    expect(headers['x-user-id']).toBe('42');
  });
});

describe('WWW-Authenticate', () => {
  it('challenges another scheme without an error code (RFC 6750 3.1), and quotes no quotes', async () => {
    const basic = await fetch(`${fx.gateway.url}/users/me`, { headers: { authorization: 'Basic YWRtaW46YWRtaW4=' } });
    expect(basic.status).toBe(401);
    expect(basic.headers.get('www-authenticate')).toBe('Bearer');
    const malformed = await fetch(`${fx.gateway.url}/users/me`, { headers: { authorization: 'Bearer a.b.c d.e.f' } });
    const challenge = malformed.headers.get('www-authenticate') ?? '';
    expect(challenge).toMatch(/^Bearer error="invalid_token", error_description="[^"\\]*"$/);
  });
});

describe('an upstream that answers oddly', () => {
  let odd: TcpServer;
  let oddAnswer = '';
  let running: RunningGateway;

  beforeAll(async () => {
    odd = createTcpServer((socket) => socket.once('data', () => socket.end(oddAnswer)));
    await new Promise<void>((resolve) => odd.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(odd.address() as AddressInfo).port}`;
    running = await startGateway({ ...fx.upstreams.urls, users: url, rights: url }, { JWT_SECRET_KEY: TEST_SECRET });
  });
  afterAll(async () => {
    await running.close();
    await new Promise((resolve) => odd.close(resolve));
  });

  it('with a status outside 100–599 is a 502 problem on REST and UPSTREAM_UNAVAILABLE on GraphQL', async () => {
    oddAnswer = 'HTTP/1.1 999 Odd\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]';
    const rest = await fetch(`${running.url}/users/me`, { headers: { authorization: `Bearer ${token}` } });
    expect(rest.status).toBe(502);
    expect(await rest.json()).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', detail: 'The user management service sent an answer that is not valid HTTP' });
    expect(onlyError(await graphql(running.url, '{ plans { id } }')).code).toBe('UPSTREAM_UNAVAILABLE');
  });

  it('with a 204 and a body still gives the client its 204', async () => {
    oddAnswer = 'HTTP/1.1 204 No Content\r\nX-Deleted: yes\r\n\r\nunexpected bytes';
    const response = await fetch(`${running.url}/users/me`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    expect(response.status).toBe(204);
    expect(response.headers.get('x-deleted')).toBe('yes');
    expect(await response.text()).toBe('');
  });

  it('with its own X-Request-ID and RateLimit-* headers does not replace the gateway’s', async () => {
    const limited = await startGateway(fx.upstreams.urls, { JWT_SECRET_KEY: TEST_SECRET, RATE_LIMIT_PER_MINUTE: '50' });
    try {
      fx.upstreams.upstreams.users.behaviour = (_req, res) =>
        void res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': 'upstream-id', 'ratelimit-remaining': '999', 'ratelimit-limit': '1000' }).end('{}');
      const response = await fetch(`${limited.url}/users/me`, { headers: { authorization: `Bearer ${token}`, 'x-request-id': 'client-id' } });
      expect(response.headers.get('x-request-id')).toBe('client-id');
      expect(response.headers.get('ratelimit-limit')).toBe('50');
      expect(response.headers.get('ratelimit-remaining')).toBe('49');
    } finally {
      await limited.close();
    }
  });
});
