import { existsSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where things are, whether this code runs from its TypeScript sources (tests, tsx), from their build in
 * dist/ (the scripts) or from a process's bundle (dist/gateway/src/main.js, dist/services/main.js and
 * their chunks): the project's root is the nearest directory above this code that holds package.json.
 */
const fromBuild = import.meta.url.endsWith('.js');

function projectRoot(): string {
  for (let directory = dirname(fileURLToPath(import.meta.url)); ; directory = dirname(directory)) {
    if (existsSync(`${directory}/package.json`)) return `${directory}/`;
    if (dirname(directory) === directory) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
  }
}

/** The project's root: package.json, .meshrc.yaml, schemas/, dist/. */
export const PROJECT_ROOT = projectRoot();

/** The build's output. */
export const DIST = `${PROJECT_ROOT}dist/`;

/** Where the running code's modules are (the project root, or dist/), and the extension they have. */
export const CODE_ROOT = fromBuild ? DIST : PROJECT_ROOT;
export const CODE_EXTENSION = fromBuild ? '.js' : '.ts';

/** The version in package.json (`service.version` of the traces). */
export function projectVersion(): string {
  return (JSON.parse(readFileSync(`${PROJECT_ROOT}package.json`, 'utf8')) as { version: string }).version;
}
