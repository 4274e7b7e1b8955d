import { beforeAll, describe, expect, it } from 'vitest';
import { allowHeader, ROUTES } from '../../gateway/src/rest/routes.js';
import { useStack } from '../helpers/stack.js';
import { readFileSync } from 'node:fs';
import { PROJECT_ROOT } from '../../shared/paths.js';
import { UPSTREAMS } from '../../shared/upstreams.js';
import { userAndAdminTokens } from '../helpers/tokens.js';

const fx = useStack({});
let user: string;
let admin: string;
beforeAll(async () => ({ user, admin } = await userAndAdminTokens()));

async function call(method: string, path: string, token?: string): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }> {
  const response = await fx.gateway.gateway.inject({ method: method as 'GET', url: path, headers: token ? { authorization: `Bearer ${token}` } : {} });
  const headers = new Headers(Object.entries(response.headers).map(([name, value]): [string, string] => [name, String(value)]));
  return { status: response.statusCode, headers, body: response.body === '' ? {} : (JSON.parse(response.body) as Record<string, unknown>) };
}

const tokenFor = (access: string) => (access === 'admin' ? () => admin : access === 'user' ? () => user : () => undefined);

describe('the route table, row by row', () => {
  const rows = ROUTES.flatMap((route) =>
    route.methods.map((method) => ({ ...route, method, path: route.exact ? route.prefix : `${route.prefix}/some/rest` })),
  );

  it('is the README’s route table, row by row', () => {
    const WHO: Record<string, string> = { anyone: 'public', 'any valid token': 'user', 'role `admin`': 'admin', 'anyone; a token, if sent, must be valid': 'optional' };
    const documented = [...readFileSync(`${PROJECT_ROOT}README.md`, 'utf8').matchAll(/^\| `(\/[^`]+)` \| ([A-Z ]+) \| ([^|]+) \| ([^|]+) \|$/gm)].map(([, path = '', methods, who = '', title]) => [path, methods, WHO[who], title]);
    expect(documented).toEqual(ROUTES.map((route) => [route.exact ? route.prefix : `${route.prefix}/{rest}`, route.methods.join(' '), route.access, UPSTREAMS[route.upstream].title]));
  });

  it.each(rows)('$method $path is forwarded to $upstream with path and query unchanged', async (row) => {
    const answer = await call(row.method, `${row.path}?a=1&b=two`, tokenFor(row.access)());
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ upstream: row.upstream, method: row.method, url: `${row.path}?a=1&b=two` });
    expect(fx.upstreams.all()).toHaveLength(1);
  });

  it.each(rows.filter((row) => row.access === 'user' || row.access === 'admin'))('$method $path without a token is 401 and reaches no upstream', async (row) => {
    const answer = await call(row.method, row.path);
    expect(answer.status).toBe(401);
    expect(answer.headers.get('www-authenticate')).toBe('Bearer');
    expect(fx.upstreams.all()).toHaveLength(0);
  });

  it.each(rows.filter((row) => row.access === 'admin'))('$method $path with a user token is 403 and reaches no upstream', async (row) => {
    const answer = await call(row.method, row.path, user);
    expect(answer).toMatchObject({ status: 403, body: { detail: 'Admin access required', title: 'Forbidden' } });
    expect(fx.upstreams.all()).toHaveLength(0);
  });

  it.each(ROUTES.map((route) => ({ ...route, path: route.exact ? route.prefix : `${route.prefix}/x` })))(
    'a method $prefix does not take is 405 with Allow, and reaches no upstream',
    async (route) => {
      const method = route.methods.includes('DELETE') ? 'OPTIONS' : 'DELETE';
      const answer = await call(method, route.path, route.access === 'admin' ? admin : user);
      expect(answer.status).toBe(405);
      expect(answer.headers.get('allow')).toBe(allowHeader(route));
      expect(answer.headers.get('allow')?.includes('HEAD')).toBe(route.methods.includes('GET'));
      expect(fx.upstreams.all()).toHaveLength(0);
    },
  );

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

  it('checks authentication, then authorization, then routing for unknown /admin paths', async () => {
    expect((await call('GET', '/admin/unknown/thing')).status).toBe(401);
    expect((await call('GET', '/admin/unknown/thing', user)).status).toBe(403);
    expect((await call('GET', '/admin/unknown/thing', admin)).status).toBe(404);
    expect((await call('GET', '/admin', admin)).status).toBe(404);
    expect((await call('DELETE', '/admin/users/1', user)).status).toBe(403);
    expect(fx.upstreams.all()).toHaveLength(0);
  });

  it('answers other unknown paths 404 whoever asks', async () => {
    for (const token of [undefined, user, admin]) {
      const answer = await call('GET', '/nowhere', token);
      expect(answer).toMatchObject({ status: 404, body: { type: 'about:blank', title: 'Not Found', status: 404, instance: '/nowhere' } });
    }
    expect(fx.upstreams.all()).toHaveLength(0);
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
