import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { GraphQLRequestCode } from './errors.js';

/** TRUSTED_DOCUMENTS_MODE: `require` runs registered documents only; `allow-arbitrary` (development) any query too. */
export type TrustedDocumentsMode = 'require' | 'allow-arbitrary';

export interface TrustedDocuments {
  readonly mode: TrustedDocumentsMode;
  /** Document id (`sha256:<hex>` or the bare hex) → the document's text. */
  readonly documents: ReadonlyMap<string, string>;
}

/** The id of a document: the SHA-256 of its text, as Apollo's persisted queries and gql.tada name it. */
export function documentId(text: string): string {
  return `sha256:${createHash('sha256').update(text).digest('hex')}`;
}

/**
 * Reads manifests: a JSON object of id → document (gql.tada's `generate persisted`, graphql-codegen's
 * client preset), or Apollo's persisted query manifest (`operations: [{ id, body }]`). Every document
 * is also reachable by its bare hash. A file that cannot be read or holds anything else is an Error
 * naming the file.
 */
export function loadTrustedDocuments(files: readonly string[], mode: TrustedDocumentsMode): TrustedDocuments {
  const documents = new Map<string, string>();
  for (const file of files) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      throw new Error(`TRUSTED_DOCUMENTS: cannot read ${file} as JSON (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { cause: error });
    }
    const operations = (parsed as { operations?: unknown }).operations;
    const entries: [string, unknown][] = Array.isArray(operations)
      ? operations.map((operation: { id?: unknown; body?: unknown }) => [String(operation.id), operation.body])
      : Object.entries(parsed as Record<string, unknown>);
    for (const [id, body] of entries) {
      if (typeof body !== 'string' || id === '') throw new Error(`TRUSTED_DOCUMENTS: ${file} is neither an object of id → document nor an Apollo persisted query manifest`);
      documents.set(id, body);
      documents.set(id.replace(/^sha256:/, ''), body);
    }
  }
  return { mode, documents };
}

/** What a request asks to run: a registered document's id (GraphQL-over-HTTP `documentId`, or an APQ hash). */
function requestedId(body: Record<string, unknown> | undefined, search: URLSearchParams): string | undefined {
  const apq = (extensions: unknown) => (extensions as { persistedQuery?: { sha256Hash?: unknown } } | undefined)?.persistedQuery?.sha256Hash;
  const fromBody = body?.documentId ?? apq(body?.extensions);
  if (typeof fromBody === 'string') return fromBody;
  const fromSearch = search.get('documentId') ?? (() => {
    try {
      return apq(JSON.parse(search.get('extensions') ?? 'null'));
    } catch {
      return undefined;
    }
  })();
  return typeof fromSearch === 'string' ? fromSearch : undefined;
}

export type TrustedDocumentOutcome =
  | { readonly kind: 'arbitrary' }
  | { readonly kind: 'registered'; readonly query: string }
  | { readonly kind: 'refused'; readonly code: Extract<GraphQLRequestCode, `PERSISTED_DOCUMENT_${string}`>; readonly message: string };

/**
 * Decides a request: a registered id runs its document; an unknown id is refused; without an id, a
 * query runs only in `allow-arbitrary` mode. An APQ hash never registers anything here: in `require`
 * mode a client cannot add a document by sending it with its hash.
 */
export function decide(trusted: TrustedDocuments, body: Record<string, unknown> | undefined, search: URLSearchParams): TrustedDocumentOutcome {
  const id = requestedId(body, search);
  if (id !== undefined) {
    const query = trusted.documents.get(id);
    if (query !== undefined) return { kind: 'registered', query };
    if (trusted.mode === 'require' || body?.documentId !== undefined || search.has('documentId')) {
      return { kind: 'refused', code: 'PERSISTED_DOCUMENT_NOT_FOUND', message: `No trusted document has the id "${id.slice(0, 80)}"` };
    }
    return { kind: 'arbitrary' };
  }
  if (trusted.mode === 'require') return { kind: 'refused', code: 'PERSISTED_DOCUMENT_REQUIRED', message: 'This gateway runs trusted documents only: send a registered documentId' };
  return { kind: 'arbitrary' };
}
