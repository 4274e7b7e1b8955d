import { errors as undiciErrors } from 'undici';
import { describe, expect, it } from 'vitest';
import { BodyTimeoutError, BodyTooLargeError } from '../../gateway/src/request-body.js';
import { GatewayError } from '../../gateway/src/errors.js';
import { CircuitBreaker, type CircuitState } from '../../gateway/src/upstream/breaker.js';
import {
  CircuitOpenError,
  failureOf,
  InvalidResponseBodyError,
  isUserFacing,
  RedirectRefusedError,
  ResponseTooLargeError,
  UnsafeTargetError,
  UpstreamDeadlineError,
  upstreamFailure,
  upstreamHttpFailure,
} from '../../gateway/src/upstream/failures.js';
import { encodePathSegment, fitsOperation, upstreamOperations } from '../../gateway/src/routing/operations.js';
import { clientResponseHeaders, privateCacheControl } from '../../gateway/src/rest/headers.js';

const operation = (id: string) => {
  const found = upstreamOperations().get(id);
  if (!found) throw new Error(`no operation ${id}`);
  return found;
};

describe('the operations of schemas/', () => {
  it('are read with their templates and parameters, shared ($ref) ones included', () => {
    expect(operation('playMovie')).toMatchObject({ upstream: 'ondemand', method: 'GET', template: '/play/ondemand/{id}', pathParams: ['id'] });
    expect([...operation('channelsByIds').queryParams]).toEqual(['ids']);
    expect([...operation('adminUsers').queryParams].sort()).toEqual(['limit', 'offset']);
    expect(operation('adminSetUserRoles')).toMatchObject({ method: 'PUT', template: '/admin/users/{id}/roles', pathParams: ['id'] });
  });
});

describe('path arguments', () => {
  it.each([
    ['m1', 'm1'],
    ['m1?x=1', 'm1%3Fx%3D1'],
    ['a b#c', 'a%20b%23c'],
    ['é', '%C3%A9'],
    ['...', '...'],
  ])('%j is sent as the one segment %j', (value, segment) => {
    expect(encodePathSegment(value, 'id')).toBe(segment);
  });

  it.each(['', '.', '..', '../../admin/ondemand/movies/m1', 'm2/../m1', 'm1%2Fx', 'a\\b', 'a;b', 'a\0b'])('%j is refused as BAD_USER_INPUT naming the argument', (value) => {
    expect(() => encodePathSegment(value, 'id')).toThrow(expect.objectContaining({ code: 'BAD_USER_INPUT', detail: 'Invalid value for argument "id": must not be empty, "." or "..", nor hold / \\ % ; or NUL' }));
  });

  it('fits an operation only when each parameter is one plain segment and the query names only its parameters', () => {
    const play = operation('playMovie');
    expect(fitsOperation(play, '/play/ondemand/m1')).toBe(true);
    expect(fitsOperation(play, '/play/ondemand/m1%3Fx%3D1')).toBe(true);
    for (const path of ['/play/ondemand/../../admin/ondemand/movies/m1', '/play/ondemand/m2/../m1', '/play/ondemand/', '/play/ondemand/..', '/play/ondemand/m1%2Fx', '/play/ondemand/m1%252F', '/play/ondemand/m1#x', '/admin/ondemand/movies/m1', '/play/ondemand/m1/']) {
      expect(fitsOperation(play, path), path).toBe(false);
    }
    expect(fitsOperation(play, '/play/ondemand/m1', 'x=1')).toBe(false);
    const batch = operation('channelsByIds');
    expect(fitsOperation(batch, '/livetv/channels/batch', 'ids=c1%2Cc2')).toBe(true);
    expect(fitsOperation(batch, '/livetv/channels/batch', 'ids=c1&admin=1')).toBe(false);
    expect(fitsOperation(operation('channelSchedule'), '/livetv/channels/c1/schedule')).toBe(true);
    expect(fitsOperation(operation('channel'), '/livetv/channels/c1/schedule')).toBe(false);
  });
});

describe('the one failure mapping', () => {
  const socketError = (code: string) => Object.assign(new Error(`connect ${code} 10.0.0.7:5432`), { code });

  it.each([
    [new undiciErrors.HeadersTimeoutError(), false, 'timeout', 'UPSTREAM_TIMEOUT', 'The on-demand service did not answer in time'],
    [new undiciErrors.BodyTimeoutError(), true, 'timeout', 'UPSTREAM_TIMEOUT', 'The on-demand service did not answer in time'],
    [new UpstreamDeadlineError('late'), true, 'timeout', 'UPSTREAM_TIMEOUT', 'The on-demand service did not answer in time'],
    [socketError('ECONNREFUSED'), false, 'unreachable', 'UPSTREAM_UNAVAILABLE', 'The on-demand service is unavailable'],
    [new undiciErrors.ConnectTimeoutError(), false, 'unreachable', 'UPSTREAM_UNAVAILABLE', 'The on-demand service is unavailable'],
    [new undiciErrors.SocketError('other side closed'), false, 'unreachable', 'UPSTREAM_UNAVAILABLE', 'The on-demand service is unavailable'],
    [new undiciErrors.SocketError('other side closed'), true, 'truncated', 'UPSTREAM_UNAVAILABLE', 'The on-demand service sent an incomplete answer'],
    [new undiciErrors.ResponseContentLengthMismatchError(), true, 'truncated', 'UPSTREAM_UNAVAILABLE', 'The on-demand service sent an incomplete answer'],
    [new ResponseTooLargeError('big'), true, 'too_large', 'UPSTREAM_UNAVAILABLE', "The on-demand service sent an answer over the gateway's size limit"],
    [new RedirectRefusedError('302'), true, 'redirect', 'UPSTREAM_UNAVAILABLE', 'The on-demand service answered with a redirect, which the gateway does not follow'],
    [new InvalidResponseBodyError('not json'), true, 'invalid_body', 'UPSTREAM_UNAVAILABLE', 'The on-demand service sent an answer that is not valid JSON'],
    [new CircuitOpenError(2500), false, 'circuit_open', 'UPSTREAM_UNAVAILABLE', 'The on-demand service is unavailable'],
    [new UnsafeTargetError('no'), false, 'unsafe_target', 'BAD_USER_INPUT', 'An argument does not fit the upstream operation it is sent to'],
    [new undiciErrors.RequestContentLengthMismatchError(), false, 'request_length_mismatch', 'BAD_USER_INPUT', 'The request body does not match its Content-Length'],
    [new BodyTooLargeError(1000), false, 'request_too_large', 'PAYLOAD_TOO_LARGE', 'The request body is over the limit of 1000 bytes'],
    [new BodyTimeoutError('no chunk'), false, 'request_timeout', 'REQUEST_TIMEOUT', 'The request body did not arrive in time'],
    [new TypeError('x is not a function'), false, 'unexpected', 'INTERNAL_SERVER_ERROR', 'The gateway failed to handle this request'],
  ] as const)('%s (response started: %s) is %s, answered as %s', (error, started, failure, code, detail) => {
    expect(failureOf(error, started)).toBe(failure);
    const mapped = upstreamFailure(error, 'ondemand', started);
    expect(mapped).toBeInstanceOf(GatewayError);
    expect({ code: mapped.code, detail: mapped.detail }).toEqual({ code, detail });
    expect(mapped.cause).toBe(error);
    expect(mapped.detail).not.toMatch(/10\.0\.0\.7|ECONN/);
  });

  it('tells a client of an open circuit when to try again', () => {
    expect(upstreamFailure(new CircuitOpenError(2500), 'livetv').headers).toEqual({ 'retry-after': '3' });
    expect(upstreamFailure(new CircuitOpenError(0), 'livetv').headers).toEqual({ 'retry-after': '1' });
  });
});

describe('upstream error statuses', () => {
  it('keep a plain 4xx detail and the status, with the code a GraphQL client reads', () => {
    for (const [status, code] of [
      [400, 'BAD_USER_INPUT'],
      [401, 'UNAUTHENTICATED'],
      [403, 'FORBIDDEN'],
      [404, 'NOT_FOUND'],
      [409, 'BAD_USER_INPUT'],
      [429, 'RATE_LIMITED'],
    ] as const) {
      const { error, withheld } = upstreamHttpFailure('users', status, '{"detail":"Email already used"}', {});
      expect({ status: error.status, code: error.code, detail: error.detail, withheld }).toEqual({ status, code, detail: 'Email already used', withheld: undefined });
    }
  });

  it('replace a 5xx body with a generic detail, and keep the body for the log', () => {
    const { error, withheld } = upstreamHttpFailure('rights', 502, 'bad gateway from nginx/1.2', {});
    expect(error).toMatchObject({ status: 502, code: 'UPSTREAM_UNAVAILABLE', detail: 'The rights management service failed to handle the request' });
    expect(withheld).toBe('bad gateway from nginx/1.2');
    expect(upstreamHttpFailure('rights', 504, '', {}).error.code).toBe('UPSTREAM_TIMEOUT');
  });

  it.each([
    'could not connect to postgres://app:pw@db01.internal:5432/catalog',
    'Lookup failed on db01.internal',
    'timeout talking to 10.1.2.3',
    'upstream 10.1.2.3:8080 refused',
    'cache at redis-1:6379 is down',
    'File "/srv/app/handlers.py", line 12, in get',
    'Error: ENOENT: no such file, open /etc/app/config.json',
    'TypeError: Cannot read properties of undefined\n    at handler (/srv/app.js:3:9)',
    'see https://internal.example/wiki/E42',
    'fe80::1%eth0 unreachable',
    'C:\\app\\data is locked',
    'NullPointerException in CatalogService',
    'secret=abc123 rejected',
  ])('replace a 4xx detail that is not a plain sentence (%j) by the status phrase', (detail) => {
    const { error, withheld } = upstreamHttpFailure('ondemand', 409, JSON.stringify({ detail }), {});
    expect(error.detail).toBe('Conflict');
    expect(withheld).toBe(JSON.stringify({ detail }));
  });

  it.each(['Email already used', 'Not entitled to play this movie', 'Movie not found', 'Incorrect username or password', 'Username already taken', 'Plan gold does not exist'])(
    'pass a plain sentence (%j)',
    (detail) => {
      expect(isUserFacing(detail)).toBe(true);
    },
  );

  it('move a validation list to errors, keeping only plain messages', () => {
    const detail = [
      { loc: ['query', 'limit'], msg: 'must be <= 100', type: 'maximum', ctx: { internal: 'x' } },
      { loc: ['body', 'email'], msg: 'rejected by https://validator.internal/check', type: 'value_error' },
    ];
    const { error } = upstreamHttpFailure('ondemand', 422, JSON.stringify({ detail }), {});
    expect(error.detail).toBe('Request validation failed');
    expect(error.extensions.errors).toEqual([
      { loc: ['query', 'limit'], msg: 'must be <= 100', type: 'maximum' },
      { loc: ['body', 'email'], msg: 'Invalid value', type: 'value_error' },
    ]);
  });

  it('carry Allow, Retry-After, and WWW-Authenticate on a 401', () => {
    expect(upstreamHttpFailure('users', 405, '', { allow: 'GET', 'x-debug': 'db01' }).error.headers).toEqual({ allow: 'GET' });
    expect(upstreamHttpFailure('users', 401, '', {}).error.headers).toEqual({ 'www-authenticate': 'Bearer' });
  });
});

describe('the circuit breaker', () => {
  function breaker(threshold = 3, openMs = 1000) {
    let now = 0;
    const changes: CircuitState[] = [];
    const instance = new CircuitBreaker({ failureThreshold: threshold, openMs, now: () => now, onStateChange: (state) => changes.push(state) });
    return { instance, changes, advance: (ms: number) => (now += ms) };
  }

  it('opens after consecutive failures, a success in between resetting the count', () => {
    const { instance, changes } = breaker(3);
    instance.failed(false);
    instance.failed(false);
    instance.succeeded(false);
    instance.failed(false);
    instance.failed(false);
    expect(instance.current).toBe('closed');
    instance.failed(false);
    expect(instance.current).toBe('open');
    expect(changes).toEqual(['open']);
    expect(instance.admit()).toEqual({ admitted: false, retryAfterMs: 1000 });
  });

  it('lets exactly one probe through once the open time is over, refusing the others meanwhile', () => {
    const { instance, changes, advance } = breaker(1, 1000);
    instance.failed(false);
    advance(400);
    expect(instance.admit()).toEqual({ admitted: false, retryAfterMs: 600 });
    advance(600);
    expect(instance.admit()).toEqual({ admitted: true, probe: true });
    expect(instance.current).toBe('half-open');
    expect(instance.admit()).toMatchObject({ admitted: false });
    instance.succeeded(true);
    expect(instance.current).toBe('closed');
    expect(instance.admit()).toEqual({ admitted: true, probe: false });
    expect(changes).toEqual(['open', 'half-open', 'closed']);
  });

  it('opens again for another full period when the probe fails', () => {
    const { instance, changes, advance } = breaker(1, 1000);
    instance.failed(false);
    advance(1000);
    expect(instance.admit()).toMatchObject({ probe: true });
    instance.failed(true);
    expect(instance.current).toBe('open');
    advance(999);
    expect(instance.admit()).toMatchObject({ admitted: false });
    advance(1);
    expect(instance.admit()).toMatchObject({ admitted: true, probe: true });
    expect(changes).toEqual(['open', 'half-open', 'open', 'half-open']);
  });

  it('frees the probe slot when a probe ends without a verdict (its client went away)', () => {
    const { instance, advance } = breaker(1, 10);
    instance.failed(false);
    advance(10);
    expect(instance.admit()).toMatchObject({ probe: true });
    instance.released(true);
    expect(instance.admit()).toMatchObject({ admitted: true, probe: true });
  });

  it('never opens with a threshold of 0', () => {
    const { instance } = breaker(0);
    for (let i = 0; i < 100; i++) instance.failed(false);
    expect(instance.current).toBe('closed');
  });
});

describe('what a REST client receives of an upstream answer', () => {
  it.each([
    ['public, max-age=60', 'private, max-age=60'],
    ['PUBLIC, S-MaxAge=600, max-age=60, must-revalidate', 'private, max-age=60, must-revalidate'],
    ['s-maxage = 5, proxy-revalidate', 'private, proxy-revalidate'],
    ['private="set-cookie", max-age=5', 'private, max-age=5'],
    ['no-cache="a, b", public', 'private, no-cache="a, b"'],
    ['private, max-age=10', 'private, max-age=10'],
    ['no-store', 'private, no-store'],
    [['public', 'max-age=1'], 'private, max-age=1'],
    [undefined, 'private'],
  ])('made for one caller, Cache-Control %j goes out as %j', (upstream, expected) => {
    expect(privateCacheControl(upstream)).toBe(expected);
  });

  it('a 204 carries no Content-Length; other statuses keep theirs; an answer for anyone keeps its Cache-Control, one for a caller says private and varies on Authorization', () => {
    const upstream = { 'content-length': '5', 'content-type': 'text/plain', 'cache-control': 'public, max-age=60' };
    expect(clientResponseHeaders(204, upstream, false)).toEqual({ 'content-type': 'text/plain', 'cache-control': 'public, max-age=60' });
    expect(clientResponseHeaders(200, upstream, false)).toEqual(upstream);
    expect(clientResponseHeaders(200, upstream, true)).toEqual({ ...upstream, 'cache-control': 'private, max-age=60', vary: 'Authorization' });
    expect(clientResponseHeaders(200, { ...upstream, vary: ['Accept-Encoding', 'Accept'] }, true).vary).toBe('Accept-Encoding, Accept, Authorization');
  });
});
