/** The REST route table in-process: what it documents, and every refusal it makes before any upstream call. */
import { beforeAll, describe, expect, it } from 'vitest';
import { allowHeader, ROUTES } from '../../gateway/src/routing/routes.js';
import { readFileSync } from 'node:fs';
import { PROJECT_ROOT } from '../../shared/paths.js';
import { UPSTREAMS } from '../../shared/upstreams.js';
import { injected, useInProcessGateway } from '../helpers/gateway.js';
import { upstreamCallsIn } from '../helpers/metrics.js';
import { userAndAdminTokens } from '../helpers/tokens.js';

const gateway = useInProcessGateway();
let user: string;
let admin: string;
beforeAll(async () => ({ user, admin } = await userAndAdminTokens()));

const call = (method: string, path: string, token?: string) => injected(gateway, method, path, token);

describe('the route table, row by row', () => {
  const rows = ROUTES.flatMap((route) =>
    route.methods.map((method) => ({ ...route, method, path: route.exact ? route.prefix : `${route.prefix}/some/rest` })),
  );

  it('is the route table of docs/rest.md, row by row', () => {
    const WHO: Record<string, string> = { anyone: 'public', 'any valid token': 'user', 'role `admin`': 'admin', 'anyone; a token, if sent, must be valid': 'optional' };
    const documented = [...readFileSync(`${PROJECT_ROOT}docs/rest.md`, 'utf8').matchAll(/^\| `(\/[^`]+)` \| ([A-Z ]+) \| ([^|]+) \| ([^|]+) \|$/gm)].map(([, path = '', methods, who = '', title]) => [path, methods, WHO[who], title]);
    expect(documented).toEqual(ROUTES.map((route) => [route.exact ? route.prefix : `${route.prefix}/{rest}`, route.methods.join(' '), route.access, UPSTREAMS[route.upstream].title]));
  });

  it.each(rows.filter((row) => row.access === 'user' || row.access === 'admin'))('$method $path without a token is 401 and reaches no upstream', async (row) => {
    const answer = await call(row.method, row.path);
    expect(answer.status).toBe(401);
    expect(answer.headers.get('www-authenticate')).toBe('Bearer');
    expect(await upstreamCallsIn(gateway)).toBe(0);
  });

  it.each(rows.filter((row) => row.access === 'admin'))('$method $path with a user token is 403 and reaches no upstream', async (row) => {
    const answer = await call(row.method, row.path, user);
    expect(answer).toMatchObject({ status: 403, body: { detail: 'Admin access required', title: 'Forbidden' } });
    expect(await upstreamCallsIn(gateway)).toBe(0);
  });

  it.each(ROUTES.map((route) => ({ ...route, path: route.exact ? route.prefix : `${route.prefix}/x` })))(
    'a method $prefix does not take is 405 with Allow, and reaches no upstream',
    async (route) => {
        const method = route.methods.includes('DELETE') ? 'OPTIONS' : 'DELETE';
      const answer = await call(method, route.path, route.access === 'admin' ? admin : user);
      expect(answer.status).toBe(405);
      expect(answer.headers.get('allow')).toBe(allowHeader(route));
      expect(answer.headers.get('allow')?.includes('HEAD')).toBe(route.methods.includes('GET'));
      expect(await upstreamCallsIn(gateway)).toBe(0);
    },
  );

  it('checks authentication, then authorization, then routing for unknown /admin paths', async () => {
    expect((await call('GET', '/admin/unknown/thing')).status).toBe(401);
    expect((await call('GET', '/admin/unknown/thing', user)).status).toBe(403);
    expect((await call('GET', '/admin/unknown/thing', admin)).status).toBe(404);
    expect((await call('GET', '/admin', admin)).status).toBe(404);
    expect((await call('DELETE', '/admin/users/1', user)).status).toBe(403);
    expect(await upstreamCallsIn(gateway)).toBe(0);
  });

  it('answers other unknown paths 404 whoever asks', async () => {
    for (const token of [undefined, user, admin]) {
      const answer = await call('GET', '/nowhere', token);
      expect(answer).toMatchObject({ status: 404, body: { type: 'about:blank', title: 'Not Found', status: 404, instance: '/nowhere' } });
    }
    expect(await upstreamCallsIn(gateway)).toBe(0);
  });
});
