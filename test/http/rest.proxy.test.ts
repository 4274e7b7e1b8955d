import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { beforeAll, describe, expect, it } from 'vitest';
import { startGateway } from '../helpers/gateway.js';
import { useStack } from '../helpers/stack.js';
import { TEST_SECRET, signToken, userToken } from '../helpers/tokens.js';
import { within } from '../helpers/wait.js';

// UPSTREAM_TIMEOUT_MS: a second, which a busy machine's ordinary calls stay well within; the late upstreams are later still.
const fx = useStack({ env: { BODY_LIMIT_BYTES: '65536', UPSTREAM_TIMEOUT_MS: '1000' } });
let user: string;

beforeAll(async () => {
  user = await signToken({ sub: '42', roles: ['user', 'editor'] });
});

const auth = () => ({ authorization: `Bearer ${user}` });

/** Sends bytes exactly as given over a plain socket and answers the raw response text. */
/**
 * Sends `text` as it is and reads the whole answer. With `keepOpen`, the client keeps its side open
 * (a body still on its way): what the gateway answers then, it answers without waiting for the rest.
 */
function rawRequest(url: string, text: string, keepOpen = false): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => (keepOpen ? socket.write(text) : socket.end(text)));
    let response = '';
    socket.on('data', (chunk) => (response += chunk.toString()));
    socket.on('end', () => resolve(response));
    socket.on('error', reject);
  });
}

describe('headers the upstream receives', () => {
  it('sets X-User-ID and X-User-Roles from the verified token and forwards Authorization', async () => {
    await fetch(`${fx.gateway.url}/users/me`, { headers: auth() });
    const headers = fx.upstreams.upstreams.users.requests[0]?.headers ?? {};
    expect(headers['x-user-id']).toBe('42');
    expect(headers['x-user-roles']).toBe('user,editor');
    expect(headers.authorization).toBe(`Bearer ${user}`);
  });

  it('removes identity headers a client sends, on protected and public routes alike', async () => {
    const spoof = { 'x-user-id': '1', 'X-User-Roles': 'admin', 'x-USER-id': '3' };
    await fetch(`${fx.gateway.url}/users/me`, { headers: { ...auth(), ...spoof } });
    await fetch(`${fx.gateway.url}/auth/login`, { method: 'POST', headers: spoof });
    await fetch(`${fx.gateway.url}/search/global?q=a`, { headers: spoof });
    const [users = {}, login = {}, search = {}] = [fx.upstreams.upstreams.users, fx.upstreams.upstreams.auth, fx.upstreams.upstreams.search].map((u) => u.requests[0]?.headers ?? {});
    expect(users['x-user-id']).toBe('42');
    expect(users['x-user-roles']).toBe('user,editor');
    for (const headers of [login, search]) {
      expect(headers['x-user-id']).toBeUndefined();
      expect(headers['x-user-roles']).toBeUndefined();
    }
  });

  it('keeps a sane X-Request-ID, replaces others, and echoes the one used', async () => {
    const kept = await fetch(`${fx.gateway.url}/users/me`, { headers: { ...auth(), 'x-request-id': 'trace-123' } });
    expect(kept.headers.get('x-request-id')).toBe('trace-123');
    expect(fx.upstreams.upstreams.users.requests[0]?.headers['x-request-id']).toBe('trace-123');
    const replaced = await fetch(`${fx.gateway.url}/users/me`, { headers: { ...auth(), 'x-request-id': 'bad id with spaces' } });
    const generated = replaced.headers.get('x-request-id');
    expect(generated).toMatch(/^[0-9a-f-]{36}$/);
    expect(fx.upstreams.upstreams.users.requests[1]?.headers['x-request-id']).toBe(generated);
    await fetch(`${fx.gateway.url}/users/me`, { headers: auth() });
    expect(fx.upstreams.upstreams.users.requests[2]?.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('sets X-Forwarded-For, -Proto and -Host, ignoring what an untrusted client claims', async () => {
    await fetch(`${fx.gateway.url}/users/me`, {
      headers: { ...auth(), 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example', forwarded: 'for=6.6.6.6' },
    });
    const headers = fx.upstreams.upstreams.users.requests[0]?.headers ?? {};
    expect(headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(headers['x-forwarded-proto']).toBe('http');
    expect(headers['x-forwarded-host']).toBe(new URL(fx.gateway.url).host);
    expect(headers.forwarded).toBeUndefined();
    expect(headers.host).toBe(new URL(fx.upstreams.urls.users).host);
  });

  it('trusts exactly TRUST_PROXY_HOPS entries of X-Forwarded-For', async () => {
    const behindProxy = await startGateway(fx.upstreams.urls, { JWT_SECRET_KEY: TEST_SECRET, TRUST_PROXY_HOPS: '1' });
    try {
      await fetch(`${behindProxy.url}/users/me`, {
        headers: { ...auth(), 'x-forwarded-for': '6.6.6.6, 203.0.113.9', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'tv.example' },
      });
      const headers = fx.upstreams.upstreams.users.requests[0]?.headers ?? {};
      expect(headers['x-forwarded-for']).toBe('203.0.113.9, 127.0.0.1');
      expect(headers['x-forwarded-proto']).toBe('https');
      expect(headers['x-forwarded-host']).toBe('tv.example');
    } finally {
      await behindProxy.close();
    }
  });

  it('drops hop-by-hop headers and those the client names in Connection', async () => {
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(`${fx.gateway.url}/users/me`, {
        headers: { ...auth(), connection: 'keep-alive, X-Secret-Hop', 'x-secret-hop': '1', 'keep-alive': 'timeout=5', te: 'trailers', 'proxy-authorization': 'Basic eA==', 'x-end-to-end': 'kept' },
      });
      req.on('response', (res) => res.resume().on('end', resolve));
      req.on('error', reject);
      req.end();
    });
    const headers = fx.upstreams.upstreams.users.requests[0]?.headers ?? {};
    for (const name of ['x-secret-hop', 'keep-alive', 'te', 'proxy-authorization']) expect(headers[name], name).toBeUndefined();
    expect(headers['x-end-to-end']).toBe('kept');
  });

  it('drops hop-by-hop headers from the response and keeps the rest', async () => {
    fx.upstreams.upstreams.users.behaviour = (_req, res) => {
      res.writeHead(200, { connection: 'X-Internal', 'x-internal': 'secret', 'keep-alive': 'timeout=1', 'x-visible': 'yes', 'content-type': 'text/plain' }).end('ok');
    };
    const response = await fetch(`${fx.gateway.url}/users/me`, { headers: auth() });
    expect(response.headers.get('x-internal')).toBeNull();
    expect(response.headers.get('x-visible')).toBe('yes');
    expect(await response.text()).toBe('ok');
  });
});

describe('bodies', () => {
  async function roundTrip(init: RequestInit & { headers?: Record<string, string> }): Promise<{ body: Buffer; contentType: string | undefined }> {
    const response = await fetch(`${fx.gateway.url}/users/upload?x=1`, { method: 'POST', ...init, headers: { ...auth(), ...init.headers } });
    expect(response.status).toBe(200);
    await response.arrayBuffer();
    const received = fx.upstreams.upstreams.users.requests.at(-1);
    return { body: received?.body ?? Buffer.alloc(0), contentType: received?.headers['content-type'] };
  }

  it('forwards JSON byte for byte', async () => {
    const json = '{"b": 2,  "a": [1, 2.50, "ü"]}';
    const { body, contentType } = await roundTrip({ body: json, headers: { 'content-type': 'application/json' } });
    expect(body.toString('utf8')).toBe(json);
    expect(contentType).toBe('application/json');
  });

  it('forwards binary bodies byte for byte', async () => {
    const bytes = randomBytes(50_000);
    const { body, contentType } = await roundTrip({ body: bytes, headers: { 'content-type': 'application/octet-stream' } });
    expect(body.equals(bytes)).toBe(true);
    expect(contentType).toBe('application/octet-stream');
  });

  it('forwards multipart form data byte for byte, boundary included', async () => {
    const form = new FormData();
    form.append('title', 'Poster');
    form.append('file', new Blob([randomBytes(1000)], { type: 'image/png' }), 'poster.png');
    const sent = new Request('http://x/', { method: 'POST', body: form });
    const bytes = Buffer.from(await sent.arrayBuffer());
    const type = sent.headers.get('content-type') ?? '';
    const { body, contentType } = await roundTrip({ body: bytes, headers: { 'content-type': type } });
    expect(contentType).toBe(type);
    expect(body.equals(bytes)).toBe(true);
  });

  it('forwards url-encoded forms byte for byte', async () => {
    const text = 'a=1&b=%20x+y&c=%E2%9C%93';
    const { body, contentType } = await roundTrip({ body: text, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(body.toString()).toBe(text);
    expect(contentType).toBe('application/x-www-form-urlencoded');
  });

  it('streams a chunked request body to the upstream as it arrives', async () => {
    let firstChunkSeen!: () => void;
    const firstChunk = new Promise<void>((resolve) => (firstChunkSeen = resolve));
    fx.upstreams.upstreams.users.behaviour = (req, res, recorded) => {
      req.once('data', () => firstChunkSeen());
      void recorded().then((request) => res.writeHead(200, { 'content-type': 'text/plain' }).end(`got ${request.body.length}`));
    };
    // A buffering gateway would never pass the first part on: the answer would never come.
    const sent = new Promise<string>((resolve, reject) => {
      const req = httpRequest(`${fx.gateway.url}/users/stream`, { method: 'PUT', headers: { ...auth(), 'content-type': 'text/plain' } });
      req.on('response', (res) => {
        let text = '';
        res.on('data', (chunk) => (text += chunk.toString()));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.write('first part;');
      void firstChunk.then(() => req.end('second part'));
    });
    const answer = await within('the answer to a body sent in two parts, the second once the upstream had the first', sent);
    expect(answer).toBe('got 22');
    expect(fx.upstreams.upstreams.users.requests[0]?.body.toString()).toBe('first part;second part');
    expect(fx.upstreams.upstreams.users.requests[0]?.headers['transfer-encoding']).toBe('chunked');
  });

  it('streams a response to the client progressively', async () => {
    let clientGotFirst!: () => void;
    const first = new Promise<void>((resolve) => (clientGotFirst = resolve));
    fx.upstreams.upstreams.ondemand.behaviour = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write('{"part":1}\n');
      // The rest is only written once the client holds the first part.
      void first.then(() => res.end('{"part":2}\n'));
    };
    const response = await fetch(`${fx.gateway.url}/ondemand/feed`, { headers: auth() });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    // A buffering gateway would wait for the whole answer, which waits for this read.
    const firstRead = await within('the first part of the answer, before the upstream wrote the rest', reader.read());
    expect(decoder.decode(firstRead.value)).toBe('{"part":1}\n');
    clientGotFirst();
    let rest = '';
    for (let next = await reader.read(); !next.done; next = await reader.read()) rest += decoder.decode(next.value);
    expect(rest).toBe('{"part":2}\n');
  });

  it('relays 204 and other success statuses with their headers', async () => {
    fx.upstreams.upstreams.users.behaviour = (_req, res) => void res.writeHead(204, { 'x-deleted': 'yes' }).end();
    const response = await fetch(`${fx.gateway.url}/users/7`, { method: 'DELETE', headers: auth() });
    expect(response.status).toBe(204);
    expect(response.headers.get('x-deleted')).toBe('yes');
    expect(await response.text()).toBe('');
    fx.upstreams.upstreams.users.behaviour = (_req, res) => void res.writeHead(201, { location: '/users/8', 'content-type': 'text/csv' }).end('a,b\n1,2\n');
    const created = await fetch(`${fx.gateway.url}/users`, { method: 'POST', headers: auth() });
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe('/users/8');
    expect(await created.text()).toBe('a,b\n1,2\n');
  });

  it('puts an upstream URL’s base path in front of the checked path', async () => {
    const prefixed = await startGateway({ ...fx.upstreams.urls, ondemand: `${fx.upstreams.urls.ondemand}/api/v1/` }, { JWT_SECRET_KEY: TEST_SECRET });
    try {
      await fetch(`${prefixed.url}/ondemand/movies?limit=1`, { headers: auth() });
      expect(fx.upstreams.upstreams.ondemand.requests.map((request) => request.url)).toEqual(['/api/v1/ondemand/movies?limit=1']);
    } finally {
      await prefixed.close();
    }
  });

  it('forwards the query string unchanged', async () => {
    const query = 'a=1&a=2&b=%2F%3F&c=%E2%9C%93&d&e=x+y&=odd';
    await fetch(`${fx.gateway.url}/users/me?${query}`, { headers: auth() });
    expect(fx.upstreams.upstreams.users.requests[0]?.url).toBe(`/users/me?${query}`);
  });
});

describe('errors', () => {
  const problemOf = async (response: Response) => {
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    return (await response.json()) as Record<string, unknown>;
  };

  it('relays an upstream 4xx with its status and detail', async () => {
    fx.upstreams.upstreams.users.behaviour = (_req, res) => void res.writeHead(409, { 'content-type': 'application/json' }).end('{"detail":"Email already used"}');
    const response = await fetch(`${fx.gateway.url}/users/me`, { method: 'PATCH', headers: { ...auth(), 'x-request-id': 'r-1' } });
    expect(response.status).toBe(409);
    expect(await problemOf(response)).toEqual({
      type: 'about:blank',
      title: 'Conflict',
      status: 409,
      code: 'BAD_USER_INPUT',
      detail: 'Email already used',
      instance: '/users/me',
      requestId: 'r-1',
    });
  });

  it('moves an upstream validation list to errors', async () => {
    const detail = [{ loc: ['body', 'email'], msg: 'value is not a valid email address', type: 'value_error', ctx: { internal: 'x' } }];
    fx.upstreams.upstreams.users.behaviour = (_req, res) => void res.writeHead(422, { 'content-type': 'application/json' }).end(JSON.stringify({ detail }));
    const response = await fetch(`${fx.gateway.url}/users/me`, { method: 'PATCH', headers: auth() });
    expect(response.status).toBe(422);
    expect(await problemOf(response)).toMatchObject({
      status: 422,
      detail: 'Request validation failed',
      errors: [{ loc: ['body', 'email'], msg: 'value is not a valid email address', type: 'value_error' }],
    });
  });

  it('uses the status phrase when an upstream 4xx body is not JSON, and adds WWW-Authenticate to a 401', async () => {
    fx.upstreams.upstreams.users.behaviour = (_req, res) => void res.writeHead(401, { 'content-type': 'text/html' }).end('<h1>nope</h1>');
    const response = await fetch(`${fx.gateway.url}/users/me`, { headers: auth() });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Bearer');
    expect(await problemOf(response)).toMatchObject({ detail: 'Unauthorized' });
  });

  it('masks an upstream 5xx body but keeps its status', async () => {
    fx.upstreams.upstreams.ondemand.behaviour = (_req, res) =>
      void res.writeHead(500, { 'content-type': 'application/json', 'x-debug': 'db01' }).end('{"detail":"psycopg2.OperationalError at db01.internal:5432","trace":"File app.py"}');
    const response = await fetch(`${fx.gateway.url}/ondemand/movies`, { headers: auth() });
    expect(response.status).toBe(500);
    const text = await response.text();
    expect(text).not.toMatch(/psycopg|db01|app\.py|trace/);
    expect(response.headers.get('x-debug')).toBeNull();
    expect(JSON.parse(text)).toMatchObject({ status: 500, title: 'Internal Server Error', detail: 'The on-demand service failed to handle the request' });
    fx.upstreams.upstreams.ondemand.behaviour = (_req, res) => void res.writeHead(502).end('bad gateway from nginx/1.2');
    const bad = await fetch(`${fx.gateway.url}/ondemand/movies`, { headers: auth() });
    expect(bad.status).toBe(502);
    expect(await bad.text()).not.toContain('nginx');
  });

  it('answers 503 when the upstream cannot be reached, without the network error', async () => {
    const down = await startGateway({ ...fx.upstreams.urls, livetv: 'http://127.0.0.1:9' }, { JWT_SECRET_KEY: TEST_SECRET });
    try {
      const response = await fetch(`${down.url}/livetv/channels`, { headers: auth() });
      expect(response.status).toBe(503);
      const text = await response.text();
      expect(JSON.parse(text)).toMatchObject({ title: 'Service Unavailable', detail: 'The live TV service is unavailable' });
      expect(text).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|:9\b/);
    } finally {
      await down.close();
    }
  });

  it('answers 504 when the upstream does not answer within UPSTREAM_TIMEOUT_MS', async () => {
    fx.upstreams.upstreams.rights.behaviour = (_req, res) => void setTimeout(() => res.writeHead(200).end('late'), 3000);
    const response = await fetch(`${fx.gateway.url}/subscriptions/me`, { headers: auth() });
    expect(response.status).toBe(504);
    expect(await problemOf(response)).toMatchObject({ title: 'Gateway Timeout', detail: 'The rights management service did not answer in time' });
  });

  it('refuses a declared body over BODY_LIMIT_BYTES with 413 before reading it, reaching no upstream', async () => {
    const response = await rawRequest(
      fx.gateway.url,
      `POST /users/upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${user}\r\nContent-Type: application/octet-stream\r\nContent-Length: 70000\r\n\r\nonly a little`,
      true,
    );
    expect(response).toMatch(/^HTTP\/1.1 413 /);
    expect(response).toContain('application/problem+json');
    expect(fx.upstreams.all()).toHaveLength(0);
  });

  it('stops a chunked body that grows over the limit with 413', async () => {
    fx.upstreams.upstreams.users.behaviour = async (_req, res, recorded) => {
      await recorded();
      res.writeHead(200).end();
    };
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${fx.gateway.url}/users/upload`, { method: 'POST', headers: { ...auth(), 'content-type': 'application/octet-stream' } });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      for (let i = 0; i < 10; i++) req.write(randomBytes(10_000));
      req.end();
    });
    expect(status).toBe(413);
  });

  it('answers 431 when the request headers are too large', async () => {
    const response = await rawRequest(fx.gateway.url, `GET /users/me HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(response).toMatch(/^HTTP\/1.1 431 /);
    expect(response).toContain('"status":431');
    expect(fx.upstreams.all()).toHaveLength(0);
  });

  it('never answers with a stack trace', async () => {
    fx.upstreams.upstreams.users.behaviour = (_req, res) => void res.destroy();
    const response = await fetch(`${fx.gateway.url}/users/me`, { headers: auth() });
    const text = await response.text();
    expect(response.status).toBe(503);
    expect(text).not.toMatch(/\bat .+:\d+:\d+|Error:/);
  });
});

describe('a second user token', () => {
  it('is told apart from the first (the cache is keyed by the whole token)', async () => {
    const other = await userToken('99');
    await fetch(`${fx.gateway.url}/users/me`, { headers: auth() });
    await fetch(`${fx.gateway.url}/users/me`, { headers: { authorization: `Bearer ${other}` } });
    expect(fx.upstreams.upstreams.users.requests.map((request) => request.headers['x-user-id'])).toEqual(['42', '99']);
  });
});
