/**
 * The documentation held to the code: README.md and docs/*.md link only to files and headings that
 * exist, and docs/configuration.md lists every variable with exactly the default the code gives it.
 * (The tables of routes, errors, services and metrics are checked by the tests of those components.)
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES, loadConfig, NODE_ENVS, readEnvironment, type NodeEnv } from '../../gateway/src/config.js';
import { SERVICE_VARIABLES, serviceEnvironment, type ServiceEnvironment } from '../../services/lib/environment.js';
import { PHASES } from '../../gateway/src/pipeline/pipeline.js';
import { PROJECT_ROOT } from '../../shared/paths.js';
import { UPSTREAM_NAMES, UPSTREAMS } from '../../shared/upstreams.js';

const PAGES = ['README.md', ...readdirSync(`${PROJECT_ROOT}docs`).filter((file) => file.endsWith('.md')).map((file) => `docs/${file}`)];
const read = (page: string) => readFileSync(`${PROJECT_ROOT}${page}`, 'utf8');

/** A page without its fenced code blocks and inline code: what renders as links and headings. */
const prose = (markdown: string) => markdown.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '');

/** GitHub's anchors for a page's headings: lower case, punctuation dropped, spaces as hyphens, repeats numbered. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  return new Set(
    [...markdown.replace(/^```[\s\S]*?^```/gm, '').matchAll(/^#{1,6} (.+)$/gm)].map(([, heading = '']) => {
      const slug = heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
      const count = seen.get(slug) ?? 0;
      seen.set(slug, count + 1);
      return count === 0 ? slug : `${slug}-${count}`;
    }),
  );
}

interface SettingRow {
  readonly variables: readonly string[];
  readonly fallback: string;
}

/** A page's `## heading` section, up to the next `## `. */
function section(page: string, heading: string): string {
  const text = read(page);
  const start = text.indexOf(`\n## ${heading}\n`);
  expect(start, `${page} has a "## ${heading}" section`).toBeGreaterThan(-1);
  const end = text.indexOf('\n## ', start + 1);
  return text.slice(start, end === -1 ? undefined : end);
}

/** The first cells of a section's table rows. */
const firstCells = (text: string) => [...text.matchAll(/^\| (.+?) \| /gm)].map(([, cell = '']) => cell).filter((cell) => !/^-+$/.test(cell));

/** The `| variable | default | meaning |` rows of a page's section. */
function settingRows(page: string, heading: string): SettingRow[] {
  return [...section(page, heading).matchAll(/^\| ((?:`[A-Z0-9_]+`(?:, )?)+) \| ([^|]+) \|/gm)].map(([, names = '', fallback = '']) => ({
    variables: [...names.matchAll(/`([A-Z0-9_]+)`/g)].map(([, name = '']) => name),
    fallback: fallback.trim(),
  }));
}

const shown = (value: unknown) => (value === undefined ? 'unset' : typeof value === 'string' ? `\`${value}\`` : String(value));

/** A default as the page writes it; one that depends on NODE_ENV says where each value holds. */
function documented(valueIn: (nodeEnv: NodeEnv) => unknown): string {
  const development = shown(valueIn('development'));
  const production = shown(valueIn('production'));
  const test = shown(valueIn('test'));
  if (development === production && production === test) return development;
  if (production === test) return `${development} in development, ${production} otherwise`;
  if (development === test) return `${development} outside production, ${production} in production`;
  return `${development} in development, ${production} in production, ${test} in test`;
}

/** A row's defaults: each variable's in order, or one when they are all the same. */
function rowDefault(variables: readonly string[], defaultOf: (variable: string) => string): string {
  const defaults = variables.map(defaultOf);
  return new Set(defaults).size === 1 ? (defaults[0] ?? '') : defaults.join(', ');
}

describe('the documentation', () => {
  it('keeps the README a front door: at most 250 lines', () => {
    expect(read('README.md').split('\n').length).toBeLessThanOrEqual(250);
  });

  it.each(PAGES)('%s links only to files and headings that exist', (page) => {
    const broken: string[] = [];
    for (const [, target = ''] of prose(read(page)).matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target)) continue;
      const [path = '', anchor] = target.split('#');
      const file = path === '' ? page : join(dirname(page), path);
      if (!existsSync(`${PROJECT_ROOT}${file}`)) broken.push(`${target}: no file ${file}`);
      else if (anchor !== undefined && !anchors(read(file)).has(anchor)) broken.push(`${target}: no heading #${anchor} in ${file}`);
    }
    expect(broken).toEqual([]);
  });

  it('draws the request flow with the pipeline’s phases, in their order, then onResponse', () => {
    const phases = firstCells(section('README.md', 'How a request flows')).flatMap((cell) => /^`(\w+)`$/.exec(cell)?.slice(1) ?? []);
    expect(phases).toEqual([...PHASES, 'onResponse']);
  });

  it('lists every npm script in docs/contributing.md, and only those', () => {
    const { scripts } = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    const listed = firstCells(section('docs/contributing.md', 'Commands')).flatMap((cell) => [...cell.matchAll(/`npm (?:run )?([\w:-]+)`/g)].map(([, name = '']) => name));
    expect(listed.sort()).toEqual(Object.keys(scripts).sort());
  });

  it('describes a layout that exists', () => {
    const paths = firstCells(section('docs/contributing.md', 'Layout')).flatMap((cell) => [...cell.matchAll(/`([^`]+)`/g)].map(([, path = '']) => path));
    expect(paths.length).toBeGreaterThan(10);
    expect(paths.filter((path) => !existsSync(`${PROJECT_ROOT}${path}`))).toEqual([]);
  });
});

describe('docs/configuration.md', () => {
  const nothingSet = readEnvironment({});
  const environments = new Map(NODE_ENVS.map((nodeEnv) => [nodeEnv, readEnvironment({ NODE_ENV: nodeEnv }) as Record<string, unknown>]));
  /** The schema's default of a variable in each NODE_ENV (NODE_ENV's own: its default). */
  const gatewayDefault = (variable: string) => documented((nodeEnv) => (variable === 'NODE_ENV' ? nothingSet.NODE_ENV : environments.get(nodeEnv)?.[variable]));

  it('lists every variable the gateway reads once, with exactly the default its schema gives', () => {
    const rows = settingRows('docs/configuration.md', 'The gateway');
    const listed = rows.flatMap((row) => row.variables);
    expect(listed.filter((variable, index) => listed.indexOf(variable) !== index), 'listed twice').toEqual([]);
    expect([...listed].sort()).toEqual([...CONFIG_VARIABLES].sort());
    for (const row of rows) expect(row.fallback, row.variables.join(', ')).toBe(rowDefault(row.variables, gatewayDefault));
  });

  /** What a reference service makes of each variable it reads for itself (`serviceEnvironment`). */
  const SERVICE_SETTINGS: Readonly<Record<string, (env: ServiceEnvironment) => unknown>> = {
    JWT_SECRET_KEY: (env) => env.jwtSecret,
    JWT_SECRET_KEY_FILE: () => undefined,
    PLAYBACK_SIGNING_KEY: (env) => env.playbackSigningKey,
    PLAYBACK_SIGNING_KEY_FILE: () => undefined,
    JWT_ISSUER: (env) => env.jwtIssuer,
    JWT_AUDIENCE: (env) => env.jwtAudience,
    ACCESS_TOKEN_TTL_SECONDS: (env) => env.accessTokenTtlSeconds,
    AUTH_TOKEN_ALGORITHM: (env) => env.tokenAlgorithm,
    LOG_LEVEL: (env) => env.logLevel,
    CHANGE_EVENTS_URL: (env) => env.changeEvents?.url,
    CHANGE_EVENTS_SECRET: (env) => env.changeEvents?.secret,
    CHANGE_EVENTS_SECRET_FILE: () => undefined,
    LIVETV_SLOT_SECONDS: (env) => env.livetvSlotMs,
    DATABASE_URL: (env) => (env.database.kind === 'postgres' ? env.database.url : undefined),
    DATABASE_PASSWORD: (env) => (env.database.kind === 'postgres' ? env.database.password : undefined),
    DATABASE_URL_FILE: () => undefined,
    DATABASE_PASSWORD_FILE: () => undefined,
    // Shown as the project's own directory, wherever the project is.
    DATA_DIR: (env) => (env.database.kind === 'embedded' ? relative(PROJECT_ROOT, env.database.dataDir) : undefined),
  };
  /** The variables the services read as the gateway does (HOST is read by services/main.ts itself). */
  const SHARED_WITH_THE_GATEWAY = ['HOST', 'SERVICES_BASE_PORT', ...UPSTREAM_NAMES.map((name) => UPSTREAMS[name].envVar)];

  it('lists every variable the reference services read for themselves, with exactly their defaults', () => {
    const rows = settingRows('docs/configuration.md', 'The reference services');
    const listed = rows.flatMap((row) => row.variables);
    expect([...listed, ...SHARED_WITH_THE_GATEWAY].sort()).toEqual([...SERVICE_VARIABLES].sort());
    expect(listed.filter((variable) => SERVICE_SETTINGS[variable] === undefined), 'read by this test').toEqual([]);
    const defaults = serviceEnvironment({});
    for (const row of rows) expect(row.fallback, row.variables.join(', ')).toBe(rowDefault(row.variables, (variable) => shown(SERVICE_SETTINGS[variable]?.(defaults))));
  });

  it('is right that the services share the gateway’s defaults for the upstream block', () => {
    const services = serviceEnvironment({});
    expect(services.basePort).toBe(nothingSet.SERVICES_BASE_PORT);
    expect(services.urls).toEqual(loadConfig({}).upstreams);
  });
});
