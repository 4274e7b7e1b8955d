import { print, type DocumentNode } from 'graphql';
import { documentId } from '../../gateway/src/trusted-documents.js';
import * as operations from '../../examples/tv-app/operations.js';

/** Where the typed TV app's manifest is committed. */
export const TV_APP_MANIFEST = new URL('../../examples/tv-app/trusted-documents.json', import.meta.url);

/** The manifest of a set of documents: id (`sha256:<hex>` of the printed text) → text, in id order. */
export function manifestOf(documents: readonly DocumentNode[]): Record<string, string> {
  const entries = documents.map((document) => print(document)).map((text) => [documentId(text), text] as const);
  return Object.fromEntries(entries.sort(([a], [b]) => a.localeCompare(b)));
}

/** The TV app's manifest as the file holds it. */
export function tvAppManifest(): string {
  return `${JSON.stringify(manifestOf(Object.values(operations) as DocumentNode[]), null, 2)}\n`;
}
