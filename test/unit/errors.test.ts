import { readFileSync } from 'node:fs';
import { STATUS_CODES } from 'node:http';
import { Writable } from 'node:stream';
import { inject } from 'light-my-request';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ERROR_KINDS, GatewayError, GRAPHQL_REQUEST_CODES, toGraphQLError, toProblem, type ErrorCode } from '../../gateway/src/errors.js';
import { createPipeline, type GatewayPlugin } from '../../gateway/src/pipeline/pipeline.js';
import { requestIdPlugin } from '../../gateway/src/observability/request-id.js';

const codes = Object.keys(ERROR_KINDS) as ErrorCode[];

describe('the error catalogue', () => {
  it('keys every kind by its own public code, each with its own status', () => {
    expect(new Set(codes.map((code) => ERROR_KINDS[code].status)).size).toBe(codes.length);
    for (const code of codes) expect(code).toMatch(/^[A-Z]+(?:_[A-Z]+)*$/);
  });

  it('uses error statuses with their standard titles (RFC 9110 names 413 "Content Too Large")', () => {
    for (const code of codes) {
      const { status, title } = ERROR_KINDS[code];
      expect(status).toBeGreaterThanOrEqual(400);
      expect(title).toBe(status === 413 ? 'Content Too Large' : STATUS_CODES[status]);
    }
  });

  it('has every extensions.code the GraphQL contract names', () => {
    for (const code of ['UNAUTHENTICATED', 'FORBIDDEN', 'BAD_USER_INPUT', 'NOT_FOUND', 'UPSTREAM_UNAVAILABLE', 'UPSTREAM_TIMEOUT', 'INTERNAL_SERVER_ERROR']) {
      expect(codes).toContain(code);
    }
  });

  it('is the error table of docs/rest.md, row for row', () => {
    const page = readFileSync(new URL('../../docs/rest.md', import.meta.url), 'utf8');
    const start = page.indexOf('| code | status |');
    const table = page.slice(start, page.indexOf('\n\n', start));
    const rows = [...table.matchAll(/^\| `([A-Z_]+)` \| (\d{3})/gm)].map(([, code, status]) => [code, Number(status)]);
    expect(rows).toEqual(codes.map((code) => [code, ERROR_KINDS[code].status]));
  });

  it('renders an RFC 9457 problem whose own members extensions cannot override', () => {
    const error = new GatewayError('FORBIDDEN', 'Admin access required', { extensions: { status: 200, type: 'x', code: 'OK', extra: 1 } });
    expect(toProblem(error, '/admin/users', { requestId: 'r1' })).toEqual({
      type: 'about:blank',
      title: 'Forbidden',
      status: 403,
      code: 'FORBIDDEN',
      detail: 'Admin access required',
      instance: '/admin/users',
      requestId: 'r1',
      extra: 1,
    });
  });

  it('keeps a relayed upstream status with its own title, and the kind’s code', () => {
    const error = new GatewayError('BAD_USER_INPUT', 'Email already used', { status: 409 });
    expect(toProblem(error, '/users/me', { requestId: 'r2' })).toMatchObject({ status: 409, title: 'Conflict', code: 'BAD_USER_INPUT' });
    expect(toGraphQLError(error, { path: ['me'] }, { requestId: 'r2' })).toEqual({ message: 'Email already used', path: ['me'], extensions: { code: 'BAD_USER_INPUT', requestId: 'r2' } });
  });

  it('keeps the cause for the log and never shows it', () => {
    const cause = new Error('connect ECONNREFUSED 10.0.0.7:5432');
    const error = new GatewayError('UPSTREAM_UNAVAILABLE', 'The on-demand service is unavailable', { cause });
    expect(error.cause).toBe(cause);
    expect(JSON.stringify(toProblem(error, '/x', { requestId: 'r3' }))).not.toContain('10.0.0.7');
    expect(JSON.stringify(toGraphQLError(error))).not.toContain('ECONNREFUSED');
  });
});

describe('an error no phase placed', () => {
  function capture(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    });
    return { logger: pino({ level: 'info' }, sink), lines };
  }

  it('is answered as a bare INTERNAL_SERVER_ERROR and logged with its cause and the request id', async () => {
    const { logger, lines } = capture();
    const broken: GatewayPlugin = {
      name: 'broken',
      phases: {
        face() {
          throw new TypeError('cannot read properties of undefined (reading "secret")');
        },
      },
    };
    const { errorResponder } = await import('../../gateway/src/server.js');
    const pipeline = createPipeline([requestIdPlugin(), broken], errorResponder(logger));
    const response = await inject((req, res) => void pipeline.run(req, res), { url: '/anything', headers: { 'x-request-id': 'bug-1' } });
    expect(response.statusCode).toBe(500);
    expect(response.json()).toEqual({
      type: 'about:blank',
      title: 'Internal Server Error',
      status: 500,
      code: 'INTERNAL_SERVER_ERROR',
      detail: 'The gateway failed to handle this request',
      instance: '/anything',
      requestId: 'bug-1',
    });
    expect(response.body).not.toContain('secret');
    const logged = lines.find((line) => line.msg === 'unexpected gateway error');
    expect(logged).toMatchObject({ requestId: 'bug-1', err: { type: 'TypeError', message: 'cannot read properties of undefined (reading "secret")' } });
  });
});

describe('the GraphQL request codes', () => {
  it('are one list, each documented in docs/graphql.md with its status', () => {
    const page = readFileSync(new URL('../../docs/graphql.md', import.meta.url), 'utf8');
    for (const [code, status] of Object.entries(GRAPHQL_REQUEST_CODES)) expect(page, code).toMatch(new RegExp(`\`${code}\`[^\\n]*\\(${status}\\b`));
  });
});
