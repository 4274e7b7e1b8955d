/** GraphQL fan-out, cancellation and account-creation abuse, tried from the attacker's side. */
import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { useStack } from '../helpers/stack.js';
import { graphql, onlyError } from '../helpers/graphql.js';
import { signToken } from '../helpers/tokens.js';
import { within } from '../helpers/wait.js';

describe('fan-out', () => {
  // These suites count upstream calls: the shared cache would answer a repeated query without one.
  const fanOut = useStack({ upstreams: 'reference', counting: true, gateways: [{}, { GRAPHQL_MAX_UPSTREAM_CALLS: '3' }], env: { UPSTREAM_CACHE_MAX_BYTES: '0' } });

  const aliases = (count: number, selection: string) => `{ ${Array.from({ length: count }, (_, i) => `a${i}: ${selection}`).join(' ')} }`;

  it('refuses 15 aliases of every channel with its schedule before execution, counting lists by their items', async () => {
    const answer = await graphql(fanOut.gateway.url, aliases(15, 'channels { schedule { id } }'));
    const error = onlyError(answer);
    expect(answer.status).toBe(400);
    expect(error.code).toBe('BAD_USER_INPUT');
    expect(error.message).toMatch(/^This query costs \d+, over the limit of 10000/);
    expect(answer.data).toBeUndefined();
    expect(fanOut.counting.count()).toBe(0);
  });

  it('counts a list by the limit it asks for', async () => {
    const fields = 'items { id title year genres durationMinutes free }';
    const large = await graphql(fanOut.gateway.url, aliases(15, `movies(limit: 100) { ${fields} }`));
    expect(large.status).toBe(400);
    expect(onlyError(large).code).toBe('BAD_USER_INPUT');
    expect(fanOut.counting.count()).toBe(0);
    const small = await graphql(fanOut.gateway.url, aliases(15, `movies(limit: 2) { ${fields} }`));
    expect(small.errors).toBeUndefined();
  });

  it('fetches every channel’s schedule in one call, however many channels and aliases', async () => {
    const answer = await graphql(fanOut.gateway.url, aliases(3, 'channels { id schedule { id } }'));
    expect(answer.errors).toBeUndefined();
    expect((answer.data?.a0 as { schedule: unknown[] }[]).length).toBeGreaterThanOrEqual(20);
    // The three aliases ask for the same page at once: one call (coalesced).
    expect(fanOut.counting.calls.map((call) => call.url.split('?')[0]).sort()).toEqual(['/livetv/channels', '/livetv/schedules']);
  });

  it('stops at GRAPHQL_MAX_UPSTREAM_CALLS: the fields past the budget fail, clearly, and make no call', async () => {
    // Five different searches: five different calls (identical ones would be coalesced into one).
    const answer = await graphql(fanOut.gateways[1]?.url ?? '', `{ ${[1, 2, 3, 4, 5].map((n) => `a${n}: search(q: "term${n}") { total }`).join(' ')} }`);
    expect(fanOut.counting.count()).toBe(3);
    expect(Object.values(answer.data ?? {}).filter((value) => value !== null)).toHaveLength(3);
    expect(answer.errors?.map((error) => [error.extensions.code, error.message])).toEqual([
      ['BAD_USER_INPUT', 'This query needs more than 3 upstream calls: ask for less in one request'],
      ['BAD_USER_INPUT', 'This query needs more than 3 upstream calls: ask for less in one request'],
    ]);
  });

  it('refuses more than one register (or login) in a request before execution', async () => {
    const registers = Array.from({ length: 15 }, (_, i) => `r${i}: register(username: "mass${i}", password: "mass-password", email: "m${i}@example.com") { id }`).join(' ');
    const answer = await graphql(fanOut.gateway.url, `mutation { ${registers} }`);
    expect(answer.errors?.[0]?.message).toBe('At most one login or register per request');
    expect(answer.data).toBeUndefined();
    const twoLogins = await graphql(fanOut.gateway.url, 'mutation { a: login(username: "alice", password: "x") { access_token } b: login(username: "bob", password: "y") { access_token } }');
    expect(twoLogins.errors?.[0]?.message).toBe('At most one login or register per request');
    expect(fanOut.counting.count()).toBe(0);
  });
});

describe('a client that goes away', () => {
  const fx = useStack({});

  it('makes no upstream call start after its connection closed', async () => {
    let held!: ServerResponse;
    let arrived!: () => void;
    const channelsAsked = new Promise<void>((resolve) => (arrived = resolve));
    fx.upstreams.upstreams.livetv.behaviour = (req, res) => {
      if (req.url === '/livetv/channels') {
        held = res;
        arrived();
      } else {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"items":[]}');
      }
    };
    const client = new AbortController();
    const asked = fetch(`${fx.gateway.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ channels { id schedule { id } } }' }),
      signal: client.signal,
    }).catch(() => 'aborted');
    await within('the channels call at the upstream', channelsAsked);
    client.abort();
    expect(await asked).toBe('aborted');
    // The channels arrive after the client left: their schedules are never asked for.
    await new Promise<void>((resolve) => held.writeHead(200, { 'content-type': 'application/json' }).end('[{"id":"c1","name":"One","number":101,"free":true}]', resolve));
    const token = await signToken({ sub: '1', roles: ['user'] });
    expect((await fetch(`${fx.gateway.url}/livetv/channels/c1`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    expect(fx.upstreams.upstreams.livetv.requests.map((request) => request.url)).toEqual(['/livetv/channels', '/livetv/channels/c1']);
  });
});

describe('account creation per client address (REGISTRATIONS_PER_HOUR), on both faces', () => {
  const fx = useStack({ env: { REGISTRATIONS_PER_HOUR: '2' } });

  it('lets two accounts through and refuses the third, from REST or GraphQL alike, before the upstream', async () => {
    fx.upstreams.upstreams.auth.behaviour = (_req, res) => void res.writeHead(201, { 'content-type': 'application/json' }).end('{"id":"9","username":"new","email":"n@example.com","roles":["user"]}');
    const rest = () => fetch(`${fx.gateway.url}/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"username":"new","password":"new-password","email":"n@example.com"}' });
    expect((await rest()).status).toBe(201);
    expect((await graphql(fx.gateway.url, 'mutation { register(username: "new", password: "new-password", email: "n@example.com") { id } }')).errors).toBeUndefined();
    const refused = await rest();
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await refused.json()).toMatchObject({ code: 'RATE_LIMITED' });
    const refusedGraphQL = await graphql(fx.gateway.url, 'mutation { register(username: "new", password: "new-password", email: "n@example.com") { id } }');
    expect(onlyError(refusedGraphQL).code).toBe('RATE_LIMITED');
    expect(fx.upstreams.upstreams.auth.requests.map((request) => `${request.method} ${request.url}`)).toEqual(['POST /auth/register', 'POST /auth/register']);
    // Logging in is not creating an account.
    expect((await fetch(`${fx.gateway.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(201);
  });
});
