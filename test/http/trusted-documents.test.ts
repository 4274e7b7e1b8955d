import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { documentId } from '../../gateway/src/trusted-documents.js';
import { TV_APP_MANIFEST, tvAppManifest } from '../../scripts/lib/trusted-manifest.js';
import { useStack } from '../helpers/stack.js';

const MANIFEST_PATH = fileURLToPath(TV_APP_MANIFEST);
const manifest = JSON.parse(readFileSync(TV_APP_MANIFEST, 'utf8')) as Record<string, string>;
const idOf = (operation: string) => Object.entries(manifest).find(([, text]) => text.startsWith(`query ${operation}`))?.[0] ?? '';

interface Answer {
  readonly status: number;
  readonly cacheControl: string | null;
  readonly body: { data?: unknown; errors?: { message: string; extensions: { code: string; requestId?: string } }[] };
}

async function ask(url: string, init: RequestInit = {}): Promise<Answer> {
  const response = await fetch(url, init);
  return { status: response.status, cacheControl: response.headers.get('cache-control'), body: (await response.json()) as Answer['body'] };
}
const post = (base: string, body: unknown) => ask(`${base}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const codeOf = (answer: Answer) => [answer.status, answer.body.errors?.map((error) => error.extensions.code)];

describe('the typed app’s manifest', () => {
  it('is extracted from its operations (npm run documents writes what is committed), ids the SHA-256 of each text', () => {
    expect(readFileSync(TV_APP_MANIFEST, 'utf8')).toBe(tvAppManifest());
    for (const [id, text] of Object.entries(manifest)) expect(id).toBe(documentId(text));
    expect(Object.keys(manifest)).toHaveLength(5);
  });
});

describe('TRUSTED_DOCUMENTS_MODE=require: only registered documents run', () => {
  // Each test its own gateway: a public answer one test caches must not answer another's request.
  const fx = useStack({ env: { TRUSTED_DOCUMENTS: MANIFEST_PATH, TRUSTED_DOCUMENTS_MODE: 'require' }, perTest: true });

  it('runs a registered document by its id', async () => {
    fx.upstreams.upstreams.livetv.behaviour = (_req, res) => void res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=30' }).end('[]');
    const answer = await post(fx.gateway.url, { documentId: idOf('LiveGuide') });
    expect(answer).toMatchObject({ status: 200, body: { data: { channels: [] } } });
    expect(fx.upstreams.upstreams.livetv.requests.map((request) => request.url)).toEqual(['/livetv/channels']);
    expect(fx.upstreams.all()).toHaveLength(1);
  });

  it('answers GET by id as a CDN may keep, when the result is public', async () => {
    fx.upstreams.upstreams.livetv.behaviour = (_req, res) => void res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=30' }).end('[]');
    const answer = await ask(`${fx.gateway.url}/graphql?documentId=${encodeURIComponent(idOf('LiveGuide'))}`, { headers: { 'apollo-require-preflight': 'true' } });
    expect(answer.status).toBe(200);
    expect(answer.cacheControl).toMatch(/^public, max-age=(30|29)$/);
  });

  it.each([
    ['a query sent as text, even a registered one', () => ({ query: manifest[idOf('LiveGuide')] }), 'PERSISTED_DOCUMENT_REQUIRED'],
    ['an arbitrary query', () => ({ query: '{ plans { id } }' }), 'PERSISTED_DOCUMENT_REQUIRED'],
    ['an id no manifest holds', () => ({ documentId: 'sha256:0000' }), 'PERSISTED_DOCUMENT_NOT_FOUND'],
    ['an APQ hash sent with its query, to register it', () => ({ query: '{ plans { id } }', extensions: { persistedQuery: { version: 1, sha256Hash: documentId('{ plans { id } }').slice(7) } } }), 'PERSISTED_DOCUMENT_NOT_FOUND'],
  ])('refuses %s with 400, a clear code, and no upstream call', async (_name, body, code) => {
    const answer = await post(fx.gateway.url, body());
    expect(codeOf(answer)).toEqual([400, [code]]);
    expect(answer.body.errors?.[0]?.extensions.requestId).toMatch(/\S/);
    expect(answer.body.data).toBeUndefined();
    expect(fx.upstreams.all()).toEqual([]);
  });
});

describe('TRUSTED_DOCUMENTS_MODE=allow-arbitrary (development)', () => {
  const fx = useStack({ env: { TRUSTED_DOCUMENTS: MANIFEST_PATH } });

  it('runs registered documents by id and arbitrary queries alike, and still refuses an unknown documentId', async () => {
    fx.upstreams.upstreams.livetv.behaviour = (_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('[]');
    expect((await post(fx.gateway.url, { documentId: idOf('LiveGuide') })).body.data).toEqual({ channels: [] });
    fx.upstreams.upstreams.rights.behaviour = (_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('[{"id":"basic","name":"Basic"}]');
    expect((await post(fx.gateway.url, { query: '{ plans { id } }' })).body.data).toEqual({ plans: [{ id: 'basic' }] });
    expect(codeOf(await post(fx.gateway.url, { documentId: 'sha256:0000' }))).toEqual([400, ['PERSISTED_DOCUMENT_NOT_FOUND']]);
  });
});
