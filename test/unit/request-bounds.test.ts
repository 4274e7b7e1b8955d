/** The bounds a GraphQL request's JSON meets before it is parsed or walked. */
import { describe, expect, it } from 'vitest';
import { nestsWithin, valuesWithin } from '../../gateway/src/graphql/request-bounds.js';

describe('nesting, read on the text', () => {
  it.each([
    ['{"a":[1,[2]]}', 3, true],
    ['{"a":[1,[2]]}', 2, false],
    // Brackets inside strings are text, escaped quotes and backslashes included.
    ['{"a":"[[[[\\"[[[[\\\\"}', 1, true],
    ['{"a":"\\\\"}[[', 1, false],
    // Stray closers cannot buy depth for the openers after them.
    [`${']'.repeat(100)}${'['.repeat(5)}`, 4, false],
    [`{"x":${'['.repeat(40)}${']'.repeat(40)}}`, 32, false],
  ])('of %s within %i is %s', (text, depth, within) => {
    expect(nestsWithin(text, depth)).toBe(within);
  });
});

describe('values, counted without walking past the bound', () => {
  it.each([
    [[{ a: 1, b: [1, 2] }], 4, true],
    [[{ a: 1, b: [1, 2] }], 3, false],
    [[undefined, null, 'x'], 0, true],
    [[{ ids: Array.from({ length: 50_000 }, (_, i) => i) }, {}], 10_000, false],
  ])('inside %j within %i is %s', (roots, limit, within) => {
    expect(valuesWithin(roots, limit)).toBe(within);
  });
});
