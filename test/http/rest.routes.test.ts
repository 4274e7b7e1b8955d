/**
 * The REST route table where it forwards: every row reaches its upstream (recording upstreams on real
 * sockets; requests dispatched in-process). Its refusals are in test/unit/rest.routes.test.ts.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { ROUTES } from '../../gateway/src/routing/routes.js';
import { injected } from '../helpers/gateway.js';
import { useStack } from '../helpers/stack.js';
import { userAndAdminTokens } from '../helpers/tokens.js';

const fx = useStack({});
let user: string;
let admin: string;
beforeAll(async () => ({ user, admin } = await userAndAdminTokens()));

const call = (method: string, path: string, token?: string) => injected(fx.gateway.gateway, method, path, token);

const tokenFor = (access: string) => (access === 'admin' ? () => admin : access === 'user' ? () => user : () => undefined);

describe('the route table, row by row', () => {
  const rows = ROUTES.flatMap((route) =>
    route.methods.map((method) => ({ ...route, method, path: route.exact ? route.prefix : `${route.prefix}/some/rest` })),
  );

  it.each(rows)('$method $path is forwarded to $upstream with path and query unchanged', async (row) => {
    const answer = await call(row.method, `${row.path}?a=1&b=two`, tokenFor(row.access)());
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ upstream: row.upstream, method: row.method, url: `${row.path}?a=1&b=two` });
    expect(fx.upstreams.all()).toHaveLength(1);
  });

  it.each(rows.filter((row) => row.method === 'GET'))('HEAD $path is taken wherever GET is, and forwarded as HEAD', async (row) => {
    const answer = await call('HEAD', row.path, tokenFor(row.access)());
    expect(answer.status).toBe(200);
    expect(fx.upstreams.all().map((request) => `${request.method} ${request.url}`)).toEqual([`HEAD ${row.path}`]);
  });

  it('matches {rest} as empty, a trailing slash or more segments, but not a longer first segment', async () => {
    for (const path of ['/admin/users', '/admin/users/', '/admin/users/7/roles']) {
      expect((await call('GET', path, admin)).body).toMatchObject({ upstream: 'users', url: path });
    }
    expect((await call('GET', '/admin/usersX', admin)).status).toBe(404);
    expect((await call('GET', '/usersX', user)).status).toBe(404);
    expect((await call('GET', '/play/ondemandX/1', user)).status).toBe(404);
    expect((await call('GET', '/search/globalX')).status).toBe(404);
    expect((await call('GET', '/search/global/more')).status).toBe(404);
    expect((await call('GET', '/play', user)).status).toBe(404);
    expect(fx.upstreams.all().map((request) => request.url)).toEqual(['/admin/users', '/admin/users/', '/admin/users/7/roles']);
  });

  it('lets anyone search, with or without a token, but a token that is sent must be valid', async () => {
    expect((await call('GET', '/search/global?q=x')).status).toBe(200);
    expect(fx.upstreams.upstreams.search.requests[0]?.headers['x-user-id']).toBeUndefined();
    expect((await call('GET', '/search/global?q=x', user)).status).toBe(200);
    expect(fx.upstreams.upstreams.search.requests[1]?.headers['x-user-id']).toBe('42');
    const bad = await call('GET', '/search/global?q=x', 'not-a-token');
    expect(bad.status).toBe(401);
    expect(bad.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token"/);
    expect(fx.upstreams.upstreams.search.requests).toHaveLength(2);
  });

  it('does not even look at a token on the public /auth routes', async () => {
    const answer = await call('POST', '/auth/login', 'not-a-token');
    expect(answer.status).toBe(200);
    expect(fx.upstreams.upstreams.auth.requests[0]?.headers.authorization).toBe('Bearer not-a-token');
    expect(fx.upstreams.upstreams.auth.requests[0]?.headers['x-user-id']).toBeUndefined();
  });
});
