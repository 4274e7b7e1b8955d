import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The preload that records what a process imports (`node --import` it, RECORD_IMPORTS naming the file). */
export const RECORD_IMPORTS_PRELOAD = './test/fixtures/record-imports.mjs';

/** What test/fixtures/record-imports.mjs recorded: each specifier the process resolved, and the URL it resolved to. */
export function recordedImports(record: string): { specifier: string; url: string }[] {
  return readFileSync(record, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [specifier = '', url = ''] = line.split('\t');
      return { specifier, url };
    });
}

/**
 * The modules a process loaded: each specifier it resolved and, for a file of the gateway's bundle
 * (dist/gateway/src/), the modules bundled in it, by the path esbuild writes in a comment above each
 * (`// node_modules/zod/v4/core/core.js`).
 */
export function importedModules(record: string): string[] {
  return recordedImports(record).flatMap(({ specifier, url }) => {
    const bundled = url.startsWith('file:') && url.includes('/dist/gateway/src/') ? [...readFileSync(fileURLToPath(url), 'utf8').matchAll(/^\/\/ (\S+\.[cm]?[jt]s)$/gm)].map((match) => match[1] ?? '') : [];
    return [specifier, ...bundled];
  });
}
