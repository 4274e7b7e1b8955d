/**
 * What one anonymous client can put in a GraphQL request — variables, nesting, fragments, a name — tried
 * from the attacker's side: each is refused as the client's mistake (4xx, a catalogue code, no error-level
 * log, no 5xx counted) before any library walks it, and other clients are served meanwhile.
 */
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TV_APP_MANIFEST } from '../../scripts/lib/trusted-manifest.js';
import { captureLog } from '../helpers/gateway.js';
import { graphql, onlyError, type GraphQLAnswer } from '../helpers/graphql.js';
import { sample } from '../helpers/metrics.js';
import { useStack } from '../helpers/stack.js';
import { userToken } from '../helpers/tokens.js';

const log = captureLog('info');
const fx = useStack({ upstreams: 'reference', counting: true, logger: log.logger, env: { UPSTREAM_CACHE_MAX_BYTES: '0' } });

/** A body sent as is (a client need not send the JSON a library would write). */
async function postRaw(body: string, token?: string, type = 'application/json'): Promise<GraphQLAnswer> {
  const response = await fetch(`${fx.gateway.url}/graphql`, { method: 'POST', headers: { 'content-type': type, ...(token ? { authorization: `Bearer ${token}` } : {}) }, body });
  const text = await response.text();
  return { status: response.status, text, ...(JSON.parse(text) as object) };
}

const SET_ROLES = 'mutation M($r: [String!]!) { adminSetUserRoles(id: "1", roles: $r) { id } }';

/** Runs `attack` while another client asks for the plans again and again; answers the slowest of those answers (ms). */
async function slowestBeside(attack: () => Promise<unknown>): Promise<number> {
  let attacking = true;
  let slowest = 0;
  const victim = (async () => {
    while (attacking) {
      const started = performance.now();
      const answer = await graphql(fx.gateway.url, '{ plans { id } }');
      expect(answer.errors, answer.text).toBeUndefined();
      slowest = Math.max(slowest, performance.now() - started);
    }
  })();
  try {
    await attack();
  } finally {
    attacking = false;
  }
  await victim;
  return slowest;
}

/** No error-level line was logged and no 5xx counted since `mark` (the lines and metrics before it). */
async function expectNoFault(mark: number): Promise<void> {
  expect(log.lines.slice(mark).filter((line) => line.level === 'error' || line.level === 'fatal')).toEqual([]);
  const metrics = await (await fetch(`${fx.gateway.url}/metrics`)).text();
  expect(sample(metrics, 'gateway_http_requests_total', { route: '/graphql', method: 'POST', status: '500' })).toBeUndefined();
}

describe('variables of the wrong type', () => {
  it('refuses a list of 50,000 wrongly typed values by its size, at once, with no upstream call, while others are served', async () => {
    const mark = log.lines.length;
    const variables = { r: Array.from({ length: 50_000 }, (_, i) => i) };
    const answers: GraphQLAnswer[] = [];
    const slowest = await slowestBeside(async () => {
      for (let round = 0; round < 5; round++) answers.push(...(await Promise.all([1, 2, 3, 4, 5].map(() => graphql(fx.gateway.url, SET_ROLES, { variables })))));
    });
    for (const answer of answers) {
      expect(answer.status).toBe(400);
      expect(onlyError(answer)).toEqual({ code: 'BAD_USER_INPUT', message: "The request's variables and extensions hold more than 10000 values" });
    }
    // Before: 2.4–5.4 s for the other client (each attack held the event loop for seconds). Generous: a busy machine.
    expect(slowest, 'the other client’s slowest answer (ms) while the attack ran').toBeLessThan(2000);
    expect(fx.counting.count('users')).toBe(0);
    await expectNoFault(mark);
  });

  it('stops coercing a list within the value bound at the fifth wrong value: 400 naming the first', async () => {
    const mark = log.lines.length;
    const answer = await graphql(fx.gateway.url, SET_ROLES, { variables: { r: Array.from({ length: 9_000 }, (_, i) => i) } });
    expect(answer.status).toBe(400);
    const error = answer.errors?.[0];
    expect(answer.errors).toHaveLength(1);
    expect(error?.extensions.code).toBe('BAD_USER_INPUT');
    expect(error?.message).toBe('Variable "$r" got invalid value 0 at "r[0]"; String cannot represent a non string value: 0');
    const errors = error?.extensions.errors as string[];
    expect(errors).toHaveLength(6);
    expect(errors.at(-1)).toBe('Too many errors processing variables, error limit reached. Execution aborted.');
    expect(fx.counting.count()).toBe(0);
    await expectNoFault(mark);
  });

  it.each([
    ['a string', { n: '5' }, 'Variable "$n" got invalid value "5"; Int cannot represent non-integer value: "5"'],
    ['a fraction', { n: 1.5 }, 'Variable "$n" got invalid value 1.5; Int cannot represent non-integer value: 1.5'],
    ['nothing', {}, 'Variable "$n" of required type "Int!" was not provided.'],
  ])('answers an Int! given %s with 400 BAD_USER_INPUT, not 500', async (_, variables, message) => {
    const mark = log.lines.length;
    const answer = await graphql(fx.gateway.url, 'query Q($n: Int!) { movies(limit: $n) { items { id } } }', { variables });
    expect(answer.status).toBe(400);
    expect(onlyError(answer)).toEqual({ code: 'BAD_USER_INPUT', message });
    expect(fx.counting.count()).toBe(0);
    await expectNoFault(mark);
  });
});

describe('values placed in an upstream path', () => {
  it('refuses a lone surrogate (text with no UTF-8 form) as the client’s mistake, with no upstream call', async () => {
    const mark = log.lines.length;
    const answer = await postRaw(`{"query":"query($id: ID!) { playMovie(id: $id) { url } }","variables":{"id":"m1\\ud800"}}`, await userToken('1'));
    expect(answer.status).toBe(200);
    expect(answer.errors?.map((error) => [error.path, error.extensions.code, error.message])).toEqual([[['playMovie'], 'BAD_USER_INPUT', 'Invalid value for argument "id": not well-formed Unicode text']]);
    expect(fx.counting.count('ondemand')).toBe(0);
    await expectNoFault(mark);
  });
});

describe('bodies and documents', () => {
  it('refuses a 4 MB body at its declared length, before reading it (GRAPHQL_BODY_LIMIT_BYTES)', async () => {
    const depth = 2_000_000;
    const answer = await postRaw(`{"query":"{ plans { id } }","variables":{"x":${'['.repeat(depth)}${']'.repeat(depth)}}}`);
    expect(answer.status).toBe(413);
    expect(onlyError(answer)).toEqual({ code: 'PAYLOAD_TOO_LARGE', message: 'The request body is over the limit of 1048576 bytes' });
  });

  it('cuts a chunked body (no declared length) at GRAPHQL_BODY_LIMIT_BYTES as it arrives: 413, the rest never read', async () => {
    const url = new URL(fx.gateway.url);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname, () => {
        socket.write('POST /graphql HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
        const chunk = `{"query":"{ plans { id } }","variables":{"x":"${'a'.repeat(64 * 1024)}`;
        // 5 MiB offered in 64 KiB chunks; the gateway answers (and stops reading) past 1 MiB.
        let sent = 0;
        const more = () => {
          while (sent < 80 && !socket.destroyed) {
            sent += 1;
            if (!socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`)) return void socket.once('drain', more);
          }
        };
        more();
      });
      let received = '';
      socket.on('data', (data: Buffer) => {
        received += data.toString();
        if (received.includes('\r\n\r\n') && received.includes('}')) {
          socket.destroy();
          resolve(received);
        }
      });
      socket.on('error', (error) => (received === '' ? reject(error) : resolve(received)));
      socket.on('close', () => resolve(received));
    });
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer).toContain('"code":"PAYLOAD_TOO_LARGE"');
    expect(answer).toContain('over the limit of 1048576 bytes');
  });

  it('refuses deeply nested JSON before parsing it, on POST and GET, while others are served', async () => {
    const mark = log.lines.length;
    const depth = 500_000;
    const nested = `${'['.repeat(depth)}${']'.repeat(depth)}`;
    const answers: GraphQLAnswer[] = [];
    const slowest = await slowestBeside(async () => {
      for (let round = 0; round < 10; round++) answers.push(await postRaw(`{"query":"{ plans { id } }","variables":{"x":${nested}}}`));
    });
    const shallowEnough = `${'['.repeat(30)}${']'.repeat(30)}`;
    const viaGet = await fetch(`${fx.gateway.url}/graphql?query=${encodeURIComponent('{ plans { id } }')}&variables=${encodeURIComponent(`{"x":${'['.repeat(40)}${']'.repeat(40)}}`)}`, { headers: { 'apollo-require-preflight': 'true' } });
    for (const answer of [...answers, { ...(await viaGet.json()), status: viaGet.status, text: '' } as GraphQLAnswer]) {
      expect(answer.status).toBe(400);
      expect(answer.errors?.map((error) => [error.extensions.code, error.message])).toEqual([['BAD_USER_INPUT', 'The request nests JSON deeper than 32 levels']]);
    }
    expect(slowest, 'the other client’s slowest answer (ms) while the attack ran').toBeLessThan(2000);
    // Within the bound, nesting is the schema's business: unused variables are fine.
    expect((await postRaw(`{"query":"{ plans { id } }","variables":{"x":${shallowEnough}}}`)).errors).toBeUndefined();
    await expectNoFault(mark);
  });

  it('refuses a fragment fan-out (100 spreads of 100 fields) as too large: 400, not 500', async () => {
    const mark = log.lines.length;
    const query = `query Q { ...A } fragment A on Query { ${Array(100).fill('...B').join(' ')} } fragment B on Query { ${Array(100).fill('plans { id }').join(' ')} }`;
    const answer = await graphql(fx.gateway.url, query);
    expect(answer.status).toBe(400);
    expect(onlyError(answer)).toEqual({ code: 'BAD_USER_INPUT', message: 'This query is too large to run: Query exceeds the maximum allowed number of nodes.' });
    expect(fx.counting.count()).toBe(0);
    await expectNoFault(mark);
  });

  it('keeps a client-chosen operation name out of the log past 64 characters; a 5 MiB one is refused whole', async () => {
    const mark = log.lines.length;
    const longName = `HomeScreen${'x'.repeat(900_000)}`;
    const answer = await graphql(fx.gateway.url, `query ${longName} { plans { id } }`);
    expect(answer.errors).toBeUndefined();
    const tooLarge = await graphql(fx.gateway.url, `query ${'y'.repeat(5 * 1024 * 1024)} { plans { id } }`);
    expect(tooLarge.status).toBe(413);
    const lines = log.lines.slice(mark).map((line) => JSON.stringify(line));
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(Math.max(...lines.map((line) => line.length))).toBeLessThan(2000);
    const access = log.lines.slice(mark).find((line) => (line.graphql as { operation?: string } | undefined)?.operation?.startsWith('HomeScreen'));
    expect((access?.graphql as { operation: string }).operation).toBe(longName.slice(0, 64));
  });
});

describe('odd bodies', () => {
  it.each([
    ['a query that is not a string', '{"query": 5}'],
    ['variables that are not an object', '{"query":"{ plans { id } }","variables":"str"}'],
    ['an operation name that is not a string', '{"query":"{ plans { id } }","operationName":5}'],
    ['an APQ hash that does not match its query', '{"query":"{ plans { id } }","extensions":{"persistedQuery":{"version":1,"sha256Hash":"abc"}}}'],
    ['an APQ hash that is not a string', '{"query":"{ plans { id } }","extensions":{"persistedQuery":{"version":1,"sha256Hash":5}}}'],
    ['an array', '[]'],
    ['null', 'null'],
    ['two operations and no name', '{"query":"query A { plans { id } } query B { plans { id } }"}'],
    ['a name no operation has', '{"query":"query A { plans { id } }","operationName":"B"}'],
    ['JSON under a media type that is not JSON (application/json-seq)', '{"query":"{ plans { id } }"}', 'application/json-seq'],
  ])('answers %s with 400 and logs no fault', async (_, body, type = 'application/json') => {
    const mark = log.lines.length;
    const answer = await postRaw(body, undefined, type);
    expect(answer.status, answer.text).toBe(400);
    expect(answer.errors?.[0]?.extensions.code).toMatch(/^(BAD_REQUEST|BAD_USER_INPUT|OPERATION_RESOLUTION_FAILURE|PERSISTED_QUERY_NOT_FOUND)$/);
    await expectNoFault(mark);
  });
});

describe('operation names as metric labels', () => {
  const named = useStack({ env: { TRUSTED_DOCUMENTS: fileURLToPath(TV_APP_MANIFEST) } });

  it('keeps the apps’ operations (the trusted documents’) counted by name after a flood of made-up names', async () => {
    named.upstreams.upstreams.ondemand.behaviour = (_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('{"items":[],"total":0}');
    await Promise.all(Array.from({ length: 300 }, (_, i) => graphql(named.gateway.url, `query Made${i} { movies { total } }`)));
    const answer = await graphql(named.gateway.url, 'query HomeScreen { movies { total } }');
    expect(answer.errors, answer.text).toBeUndefined();
    const metrics = await (await fetch(`${named.gateway.url}/metrics`)).text();
    expect(sample(metrics, 'gateway_graphql_operations_total', { operation: 'HomeScreen', type: 'query', outcome: 'success' })).toBe(1);
    expect(sample(metrics, 'gateway_graphql_operations_total', { operation: 'other', type: 'query', outcome: 'success' })).toBe(300);
    expect(metrics).not.toContain('operation="Made');
  });
});
