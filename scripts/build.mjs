// `npm run build`: the TypeScript sources compiled to dist/ (esbuild, one file each, and the processes'
// entries bundled: type checks are `npm run typecheck`'s), then the Mesh's source schemas generated ahead
// of time (dist/mesh-artifacts/), and the embedded database's template (dist/pglite/).
// With --if-stale it does only what is out of date, so `npm start` can run it every time.
// Plain JavaScript: it must run before anything is compiled, with nothing but Node and esbuild.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIST = join(ROOT, 'dist');
const SOURCE_DIRS = ['shared', 'gateway', 'services', 'scripts'];
const MANIFEST = join(DIST, 'build.json');
const ifStale = process.argv.includes('--if-stale');

function sourcesUnder(dir) {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourcesUnder(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** A digest of what the compiled code is made from: every source, this script and the installed packages. */
function codeDigest(sources) {
  const hash = createHash('sha256');
  for (const file of [...sources, 'scripts/build.mjs', 'package-lock.json']) hash.update(`${file}\0`).update(readFileSync(join(ROOT, file))).update('\0');
  return hash.digest('hex');
}

function readManifest() {
  try {
    return JSON.parse(readFileSync(MANIFEST, 'utf8'));
  } catch {
    return {};
  }
}

/**
 * The processes' entries are bundles, each of its code and its packages (`dist/gateway/src/main.js`,
 * `dist/services/main.js`); what one imports only when needed (the gateway's server after its
 * configuration, its explorer page) stays in chunks loaded then (`chunks/` beside it). Resolving and
 * loading one file a module, some 1,500 for the gateway and 900 for a service, was half of their start.
 * Left to Node, from node_modules (`external`): graphql, which graphql-shield (loaded by require) must
 * share; ioredis, pino and PGlite, which find files beside their own modules; CommonJS-only packages
 * imported when needed (see the check below); pg's optional native binding; the explorer's page (9 MB).
 */
const BOTH_EXTERNAL = ['pino', '@opentelemetry/context-async-hooks'];
const BUNDLES = [
  { entry: 'gateway/src/main.ts', external: [...BOTH_EXTERNAL, 'ioredis', 'light-my-request', '@graphql-yoga/render-graphiql'] },
  { entry: 'services/main.ts', external: [...BOTH_EXTERNAL, '@electric-sql/pglite', 'pg-native'] },
];
/**
 * graphql, left to Node as the rest of node_modules reaches it; a deep import (`graphql/language`) names
 * the file require() would load, since an ES module's import resolves no directory or missing extension.
 */
const graphqlFromNodeModules = {
  name: 'graphql-from-node-modules',
  setup(build) {
    const requireFromRoot = createRequire(join(ROOT, 'package.json'));
    const graphqlRoot = dirname(requireFromRoot.resolve('graphql/package.json'));
    build.onResolve({ filter: /^graphql(\/|$)/ }, ({ path }) => ({
      path: path === 'graphql' ? path : `graphql/${relative(graphqlRoot, requireFromRoot.resolve(path))}`,
      external: true,
    }));
  },
};

const started = performance.now();
const sources = SOURCE_DIRS.flatMap(sourcesUnder).sort();
const digest = codeDigest(sources);
const codeCurrent = ifStale && readManifest().code === digest && statSync(join(DIST, 'gateway/src/main.js'), { throwIfNoEntry: false });
if (!codeCurrent) {
  for (const dir of SOURCE_DIRS) rmSync(join(DIST, dir), { recursive: true, force: true });
  const common = { format: 'esm', platform: 'node', target: 'node20', sourcemap: true, logLevel: 'warning' };
  const bundledEntries = new Set(BUNDLES.map(({ entry }) => entry));
  await build({ ...common, entryPoints: sources.filter((file) => !bundledEntries.has(file)).map((file) => join(ROOT, file)), outdir: DIST, outbase: ROOT });
  for (const { entry, external } of BUNDLES) {
    const bundled = await build({
      ...common,
      entryPoints: [entry],
      absWorkingDir: ROOT,
      outdir: join(DIST, dirname(entry)),
      chunkNames: 'chunks/[name]-[hash]',
      // The maps name the sources (enough for `node --enable-source-maps` stack traces) without a copy of each.
      sourcesContent: false,
      // Class and function names as written: errors are named from their constructors (Apollo's SyntaxError, not SyntaxError2).
      keepNames: true,
      bundle: true,
      splitting: true,
      external,
      plugins: [graphqlFromNodeModules],
      // A package's ES module build where it has one: a chunk imported later keeps its named exports.
      mainFields: ['module', 'main'],
      metafile: true,
      // The CommonJS packages in it require Node's modules, and an ES module has no require of its own.
      banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
    });
    // esbuild gives a chunk that holds a CommonJS module only a default export (evanw/esbuild#3245): the
    // import() of such a package would find none of the names it asks for. Refused here, not at run time.
    const commonJs = Object.values(bundled.metafile.outputs).flatMap(({ entryPoint }) =>
      entryPoint && entryPoint !== entry && bundled.metafile.inputs[entryPoint]?.format === 'cjs' ? [entryPoint] : [],
    );
    if (commonJs.length > 0) throw new Error(`${entry} imports CommonJS modules when needed (${commonJs.join(', ')}): make their packages external in BUNDLES (scripts/build.mjs)`);
  }
  writeFileSync(MANIFEST, JSON.stringify({ code: digest }));
  console.log(`build: compiled ${sources.length} files to ${relative(ROOT, DIST)}/, bundled ${BUNDLES.map(({ entry }) => entry).join(' and ')}, in ${Math.round(performance.now() - started)} ms`);
}

// The Mesh artifacts are made by the compiled gateway itself, which also knows when they are stale.
const compiled = (path) => import(pathToFileURL(join(DIST, path)).href);
const { artifactsAreCurrent, MESH_ARTIFACTS } = await compiled('gateway/src/graphql/mesh-artifacts.js');
if (!ifStale || !artifactsAreCurrent()) {
  const meshStarted = performance.now();
  const mesh = await compiled('gateway/src/graphql/mesh.js');
  const { createLogger } = await compiled('gateway/src/observability/logger.js');
  const { referenceServiceUrls, DEFAULT_SERVICES_BASE_PORT } = await compiled('shared/upstreams.js');
  const built = await mesh.loadMesh(referenceServiceUrls(DEFAULT_SERVICES_BASE_PORT), fetch, createLogger({ level: 'warn' }), 'write');
  built.destroy();
  console.log(`build: Mesh artifacts in ${relative(ROOT, MESH_ARTIFACTS)}/ in ${Math.round(performance.now() - meshStarted)} ms`);
}

// The embedded database's templates, made by the compiled services (which know where they go): the empty
// cluster, once per PGlite version (initdb, seconds), and from it the demo database, every service's
// schema migrated and its demo data written, again whenever what it is made from changes. A first start
// unpacks one instead of running initdb, migrations and seeds.
const { baseTemplateIsCurrent, demoTemplateIsCurrent, writeBaseTemplate } = await compiled('services/lib/embedded.js');
if (!baseTemplateIsCurrent()) {
  const templateStarted = performance.now();
  await writeBaseTemplate();
  console.log(`build: the embedded database's empty cluster in ${relative(ROOT, DIST)}/pglite/ in ${Math.round(performance.now() - templateStarted)} ms`);
}
const demoSources = ['services/data', 'services'].flatMap((dir) =>
  readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => (entry.isFile() ? [join(dir, entry.name)] : [])),
);
const demoHash = createHash('sha256');
for (const file of [...demoSources.sort(), 'services/lib/database.ts', 'package-lock.json']) demoHash.update(`${file}\0`).update(readFileSync(join(ROOT, file))).update('\0');
for (const service of readdirSync(join(ROOT, 'services/migrations'))) {
  for (const file of readdirSync(join(ROOT, 'services/migrations', service)).sort()) demoHash.update(`${service}/${file}\0`).update(readFileSync(join(ROOT, 'services/migrations', service, file))).update('\0');
}
const demoInputs = demoHash.digest('hex');
if (!demoTemplateIsCurrent(demoInputs)) {
  const demoStarted = performance.now();
  await (await compiled('services/registry.js')).writeDemoTemplate(demoInputs);
  console.log(`build: the embedded database's demo data in ${relative(ROOT, DIST)}/pglite/ in ${Math.round(performance.now() - demoStarted)} ms`);
}
