/** What the per-address limits key on: the client's key, and the upstream operation a REST path reaches. */
import { describe, expect, it } from 'vitest';
import type { IncomingMessage } from 'node:http';
import { clientKeyOf, forwardedOf } from '../../gateway/src/forwarded.js';
import { bucketShape, decision } from '../../gateway/src/ratelimit/limiter.js';
import { findRoute } from '../../gateway/src/routing/routes.js';
import { normaliseTarget } from '../../gateway/src/routing/target.js';
import { operationReached, upstreamOperations } from '../../gateway/src/routing/operations.js';

describe('the client key', () => {
  it.each([
    ['203.0.113.9', 64, '203.0.113.9'],
    ['203.0.113.9:51234', 64, '203.0.113.9'],
    ['::ffff:203.0.113.9', 64, '203.0.113.9'],
    ['::ffff:cb00:7109', 64, '203.0.113.9'],
    ['2001:db8:1:2:aaaa:bbbb:cccc:dddd', 64, '2001:db8:1:2::/64'],
    ['2001:DB8:1:2::1', 64, '2001:db8:1:2::/64'],
    ['[2001:db8:1:2::1]:443', 64, '2001:db8:1:2::/64'],
    ['fe80::1%eth0', 64, 'fe80::/64'],
    ['2001:db8:1:2::1', 48, '2001:db8:1::/48'],
    ['2001:db8:1:2::1', 128, '2001:db8:1:2::1/128'],
    ['unknown', 64, 'unknown'],
    ['x'.repeat(1000), 64, 'x'.repeat(64)],
  ])('of %s (IPv6 by /%i) is %s', (address, prefix, key) => {
    expect(clientKeyOf(address, prefix)).toBe(key);
  });
});

describe('the client address', () => {
  const through = (forwardedFor: string) => forwardedOf({ socket: { remoteAddress: '10.0.0.1' }, headers: { 'x-forwarded-for': forwardedFor } } as unknown as IncomingMessage, { trustedHops: 1, ipv6Prefix: 64 });

  it('is the trusted entry, kept to 64 characters whatever a proxy (or a client, with fewer proxies than trusted) wrote there', () => {
    expect(through('198.51.100.7').clientIp).toBe('198.51.100.7');
    expect(through(`spoofed, ${'y'.repeat(10_000)}`).clientIp).toBe('y'.repeat(64));
  });
});

describe('the operation a REST path reaches', () => {
  /** A path the route table forwards as it is: the client's path, normalised as the gateway does. */
  const reached = (method: string, target: string) => {
    const { path } = normaliseTarget(target);
    const rule = findRoute(path);
    return rule && operationReached(rule.upstream, method, path)?.operationId;
  };

  it.each([
    ['/auth/register', 'register'],
    ['/auth/register/', 'register'],
    ['/auth/register//', 'register'],
    ['/auth/./register/', 'register'],
    ['/auth/x/../register', 'register'],
    ['/auth/%72egister', 'register'],
    ['//auth//register/.', 'register'],
    ['/auth/Register', 'register'],
    ['/auth/login/', 'login'],
    ['/auth/registers', undefined],
    ['/auth/register/x', undefined],
    ['/auth', undefined],
  ])('POST %s reaches %s', (target, operationId) => {
    expect(reached('POST', target)).toBe(operationId);
  });

  it('prefers a literal path to a template, and a template by its literal text', () => {
    expect(reached('GET', '/users/me/')).toBe(operationReached('users', 'GET', '/users/me')?.operationId);
    expect(reached('GET', '/livetv/channels/c1/schedule/')).toBe(operationReached('livetv', 'GET', '/livetv/channels/{id}/schedule')?.operationId);
    expect(reached('GET', '/livetv/channels/c1/schedule')).not.toBe(reached('GET', '/livetv/channels/c1'));
    expect(reached('DELETE', '/auth/register')).toBeUndefined();
  });

  it('finds every operation of the specs from its own template, with and without a trailing slash', () => {
    for (const operation of upstreamOperations().values()) {
      const path = operation.template.replace(/\{[^}]+\}/g, 'x1');
      expect(operationReached(operation.upstream, operation.method, path)?.operationId, path).toBe(operation.operationId);
      expect(operationReached(operation.upstream, operation.method, `${path}/`)?.operationId, `${path}/`).toBe(operation.operationId);
    }
  });
});

describe('when a refused client may come back', () => {
  it.each([
    [2, 3_600_000, 1800],
    [10, 3_600_000, 360],
    [600, 60_000, 1],
    [7, 60_000, 9],
  ])('a bucket of %i per %i ms, empty: Retry-After %i s, counted from whole milliseconds', (capacity, windowMs, seconds) => {
    const refused = decision(bucketShape(capacity, windowMs), false, 0);
    expect(refused.retryAfterSeconds).toBe(seconds);
    expect(refused.resetSeconds).toBe(seconds);
  });
});
