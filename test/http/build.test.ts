/**
 * The build, in a copy of the project: what `npm run build` makes, what `--if-stale` redoes, and a
 * gateway that never serves stale Mesh artifacts.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnProcess, waitUntilReady } from '../../scripts/lib/processes.js';
import { RECORD_IMPORTS_PRELOAD, recordedImports } from '../helpers/imports.js';
import { freePortBlock } from '../helpers/ports.js';
import { runToEnd } from '../helpers/process.js';
import { waitingFor, within } from '../helpers/wait.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** A copy of the project (sources, the installed packages linked), built once: what each test copies. */
let template: string;
let firstBuild: string;
const copies: string[] = [];

/** How long a build, or a start that generates the Mesh artifacts itself, may take on a busy two-core machine (within the hook timeout: a build blocks the worker, so this is its only bound). */
const BUILD_MS = 50_000;

const build = (copy: string, ...args: string[]) => runToEnd(`the build of ${copy} (${args.join(' ')})`, process.execPath, ['scripts/build.mjs', ...args], { cwd: copy }, BUILD_MS);

/** Whether the copy's gateway would serve its prebuilt Mesh artifacts as they are (the check it makes at start). */
function artifactsCurrent(copy: string): boolean {
  const script = "const { artifactsAreCurrent } = await import('./dist/gateway/src/graphql/mesh-artifacts.js'); process.stdout.write(String(artifactsAreCurrent()));";
  return runToEnd(`${copy}'s check of its Mesh artifacts`, process.execPath, ['--input-type=module', '-e', script], { cwd: copy }) === 'true';
}

/** A test's own copy of the built project. */
function builtCopy(): string {
  const copy = mkdtempSync(join(tmpdir(), 'gateway-build-'));
  copies.push(copy);
  cpSync(template, copy, { recursive: true, verbatimSymlinks: true });
  return copy;
}

/** Starts the copy's compiled gateway (logging at debug), answers what it logged by the time it served, and stops it. */
async function startAndStop(copy: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const port = await freePortBlock(1);
  const url = `http://127.0.0.1:${port}`;
  const gateway = spawnProcess({ label: 'gateway', args: ['dist/gateway/src/main.js'], cwd: copy, env: { PATH: process.env.PATH, PORT: String(port), LOG_LEVEL: 'debug', SHUTDOWN_DRAIN_MS: '0', ...env }, keepLines: 1000 });
  try {
    await waitUntilReady({ label: 'gateway', url: `${url}/health`, child: gateway.child, output: gateway.output, signal: waitingFor(`${url}/health to answer 200`, BUILD_MS) });
    expect((await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query":"{ __typename }"}' })).status).toBe(200);
    return gateway.output();
  } finally {
    await within('the gateway to exit after SIGTERM', gateway.stop());
  }
}

/** What Mesh logs (at debug) when it generates a source's schema from its OpenAPI spec. */
const GENERATING = /Generating GraphQL schema from OpenAPI schema/;

beforeAll(() => {
  template = mkdtempSync(join(tmpdir(), 'gateway-build-'));
  copies.push(template);
  for (const entry of ['package.json', 'package-lock.json', '.meshrc.yaml', 'shared', 'gateway', 'services', 'scripts', 'schemas']) cpSync(join(ROOT, entry), join(template, entry), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(template, 'node_modules'));
  // The embedded database's template (made once per PGlite version, seconds of initdb) is not what this file is about.
  cpSync(join(ROOT, 'dist/pglite'), join(template, 'dist/pglite'), { recursive: true });
  firstBuild = build(template);
});
afterAll(() => {
  for (const copy of copies) rmSync(copy, { recursive: true, force: true });
});

describe('npm run build', { timeout: 120_000 }, () => {
  it('compiles every source to dist/ and prebuilds the Mesh artifacts; --if-stale then has nothing to do', () => {
    expect(firstBuild).toMatch(/build: compiled \d+ files to dist\//);
    expect(firstBuild).toMatch(/build: Mesh artifacts in dist\/mesh-artifacts\//);
    const copy = builtCopy();
    expect(JSON.parse(readFileSync(join(copy, 'dist/mesh-artifacts/manifest.json'), 'utf8'))).toEqual({ inputs: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(readFileSync(join(copy, 'dist/gateway/src/main.js'), 'utf8')).not.toMatch(/^import type /m);
    expect(build(copy, '--if-stale')).toBe('');
  });

  it('bundles the gateway: serving, it loads from node_modules only the packages the build leaves to Node', async () => {
    const copy = builtCopy();
    const record = join(copy, 'imports.txt');
    await startAndStop(copy, { NODE_OPTIONS: `--import ${join(ROOT, RECORD_IMPORTS_PRELOAD)}`, RECORD_IMPORTS: record });
    const packages = recordedImports(record)
      .map(({ url }) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1])
      .filter((name) => name !== undefined);
    // graphql (shared with graphql-shield, which is loaded by require) and pino; ioredis and OpenTelemetry's
    // context manager only with REDIS_URL or tracing. The rest, some 1,500 modules, are in the bundle.
    expect([...new Set(packages)].sort()).toEqual(['graphql', 'pino']);
  });

  it('recompiles only the code when a source changes', () => {
    const copy = builtCopy();
    const file = join(copy, 'shared/development.ts');
    writeFileSync(file, `${readFileSync(file, 'utf8')}\n// changed\n`);
    const output = build(copy, '--if-stale');
    expect(output).toMatch(/build: compiled/);
    expect(output).not.toMatch(/Mesh artifacts/);
  });

  it('never serves stale artifacts: a changed spec is generated at start-up until the build catches up', async () => {
    const copy = builtCopy();
    // (That current artifacts are served as they are, a production gateway process shows: graphql.http.test.ts.)
    expect(artifactsCurrent(copy)).toBe(true);
    const openapi = join(copy, 'schemas/ondemand.yaml');
    writeFileSync(openapi, readFileSync(openapi, 'utf8').replace('operationId: movie\n', 'operationId: movie\n      description: changed after the build\n'));
    expect(artifactsCurrent(copy)).toBe(false);
    const stale = await startAndStop(copy);
    expect(stale).toMatch(/Mesh artifacts are missing or stale/);
    expect(stale).toMatch(GENERATING);

    expect(build(copy, '--if-stale')).toMatch(/build: Mesh artifacts/);
    expect(artifactsCurrent(copy)).toBe(true);
  });
});
