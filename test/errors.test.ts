import { STATUS_CODES } from 'node:http';
import { describe, expect, it } from 'vitest';
import { ERROR_KINDS, problemOf } from '../gateway/src/errors.js';

describe('the error catalogue', () => {
  const kinds = Object.entries(ERROR_KINDS);

  it('gives every kind its own status and its own code', () => {
    expect(new Set(kinds.map(([, kind]) => kind.status)).size).toBe(kinds.length);
    expect(new Set(kinds.map(([, kind]) => kind.code)).size).toBe(kinds.length);
  });

  it('uses error statuses with their standard titles (RFC 9110 names 413 "Content Too Large")', () => {
    for (const [, { status, title }] of kinds) {
      expect(status).toBeGreaterThanOrEqual(400);
      expect(title).toBe(status === 413 ? 'Content Too Large' : STATUS_CODES[status]);
    }
  });

  it('has every extensions.code the GraphQL contract names', () => {
    const codes = kinds.map(([, kind]) => kind.code);
    for (const code of ['UNAUTHENTICATED', 'FORBIDDEN', 'BAD_USER_INPUT', 'NOT_FOUND', 'UPSTREAM_UNAVAILABLE', 'UPSTREAM_TIMEOUT', 'INTERNAL_SERVER_ERROR']) {
      expect(codes).toContain(code);
    }
  });

  it('builds RFC 9457 problems whose own members cannot be overridden by extensions', () => {
    expect(problemOf('FORBIDDEN', 'Admin access required', '/admin/users', 'r1', { status: 200, type: 'x', extra: 1 })).toEqual({
      type: 'about:blank',
      title: 'Forbidden',
      status: 403,
      detail: 'Admin access required',
      instance: '/admin/users',
      requestId: 'r1',
      extra: 1,
    });
  });
});
