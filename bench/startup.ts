/**
 * Start-up, measured as a user meets it, from the build: the gateway alone from `node` to its first 200
 * on /health (the schema is loaded before it listens), `npm start` to its Ready line, and a bad
 * configuration to its error; idle, then with a CPU burner on one core. Also the gateway's RSS after
 * start and the size of the production dependencies (what a Docker image ships).
 * Usage: npm run bench:startup [-- --runs 5 --loaded-starts 10]
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../shared/paths.js';
import { spawnReady } from '../scripts/lib/processes.js';
import { freePortBlock } from '../test/helpers/ports.js';
import { stopAfter } from './lib.js';

const argument = (name: string, fallback: number) => {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? fallback : Number(process.argv[index + 1]);
};
const runs = argument('runs', 5);
const loadedStarts = argument('loaded-starts', 10);
stopAfter(20 * 60_000);

const load = () => loadavg().map((value) => value.toFixed(2)).join(' ');
const seconds = (ms: number) => (ms / 1000).toFixed(2);
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** The gateway alone: ms from spawning `node` to the first 200 on /health, and its RSS then (MB). */
async function gatewayStart(): Promise<{ ms: number; rssMb: number }> {
  const port = await freePortBlock(1);
  const started = performance.now();
  const { child } = await spawnReady({ label: 'gateway', args: ['dist/gateway/src/main.js'], cwd: PROJECT_ROOT, env: { ...process.env, PORT: String(port), LOG_LEVEL: 'warn', NODE_ENV: 'development' }, readyUrl: `http://127.0.0.1:${port}/health` });
  const ms = performance.now() - started;
  const rssKb = Number(execFileSync('ps', ['-o', 'rss=', '-p', String(child.pid)], { encoding: 'utf8' }).trim());
  await stop(child);
  return { ms, rssMb: rssKb / 1024 };
}

/** `npm start`: ms to its "Ready" line, or the failure. */
async function npmStart(): Promise<{ ms: number; ok: boolean; reported: string }> {
  const base = await freePortBlock(7);
  const started = performance.now();
  const child = spawn('npm', ['start'], { cwd: PROJECT_ROOT, detached: true, env: { ...process.env, SERVICES_BASE_PORT: String(base), PORT: String(base + 6) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const outcome = await new Promise<boolean>((resolve) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ctrl-C stops everything')) resolve(true);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', () => resolve(false));
  });
  const ms = performance.now() - started;
  const exited = new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', () => resolve())));
  if (child.exitCode === null && child.pid) process.kill(-child.pid, 'SIGINT');
  await exited;
  return { ms, ok: outcome, reported: /Ready in ([\d.]+) s/.exec(output)?.[1] ?? (outcome ? '?' : output.split('\n').slice(-5).join(' ')) };
}

/** A bad PORT: ms from spawning `node` to the exit with its message. */
function configError(): number {
  const started = performance.now();
  try {
    execFileSync(process.execPath, ['dist/gateway/src/main.js'], { cwd: PROJECT_ROOT, env: { PATH: process.env.PATH, PORT: 'not-a-port' }, stdio: 'pipe' });
  } catch {
    // exits 1, as it should
  }
  return performance.now() - started;
}

/** Bytes of the production dependency tree as installed (`npm ci --omit=dev` would ship the same). */
function productionDependencyMb(): number {
  const paths = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: PROJECT_ROOT, encoding: 'utf8' })
    .trim()
    .split('\n')
    .filter((path) => path.includes('node_modules'));
  const sizeOf = (dir: string): number => {
    const listing = execFileSync('du', ['-sk', '--exclude=node_modules', dir], { encoding: 'utf8' });
    return Number(listing.split('\t')[0]) * 1024;
  };
  return [...new Set(paths)].reduce((sum, path) => sum + sizeOf(path), 0) / 1024 / 1024;
}

async function measureAll(label: string, starts: number): Promise<string[]> {
  const rows: string[] = [];
  const gateway: { ms: number; rssMb: number }[] = [];
  for (let i = 0; i < runs; i++) gateway.push(await gatewayStart());
  rows.push(`| ${label} | gateway alone: node → first 200 on /health | ${seconds(median(gateway.map((run) => run.ms)))} s | ${gateway.map((run) => seconds(run.ms)).join(', ')} | ${load()} |`);
  rows.push(`| ${label} | gateway RSS after start | ${median(gateway.map((run) => run.rssMb)).toFixed(0)} MB | ${gateway.map((run) => run.rssMb.toFixed(0)).join(', ')} | ${load()} |`);
  const errors = Array.from({ length: runs }, configError);
  rows.push(`| ${label} | bad configuration reported | ${seconds(median(errors))} s | ${errors.map(seconds).join(', ')} | ${load()} |`);
  const launches: { ms: number; ok: boolean; reported: string }[] = [];
  for (let i = 0; i < starts; i++) launches.push(await npmStart());
  const succeeded = launches.filter((run) => run.ok);
  rows.push(`| ${label} | \`npm start\` to Ready (${succeeded.length}/${launches.length} succeeded) | ${seconds(median(succeeded.map((run) => run.ms)))} s | ${launches.map((run) => (run.ok ? seconds(run.ms) : `failed: ${run.reported}`)).join(', ')} | ${load()} |`);
  return rows;
}

execFileSync(process.execPath, ['scripts/build.mjs', '--if-stale'], { cwd: PROJECT_ROOT, stdio: 'inherit' });
const lines = ['| machine | what | median | all runs | load average (1, 5, 15 min) |', '| --- | --- | ---: | --- | --- |'];
lines.push(...(await measureAll('idle', runs)));
const burner = spawn(process.execPath, ['-e', 'for(;;);'], { stdio: 'ignore' });
try {
  lines.push(...(await measureAll('one core burnt', loadedStarts)));
} finally {
  burner.kill('SIGKILL');
}
console.log(lines.join('\n'));
console.log(`\nproduction dependencies (npm ls --omit=dev): ${productionDependencyMb().toFixed(0)} MB; dist/: ${(statSync(join(PROJECT_ROOT, 'dist')).isDirectory() ? Number(execFileSync('du', ['-sk', join(PROJECT_ROOT, 'dist')], { encoding: 'utf8' }).split('\t')[0]) / 1024 : 0).toFixed(1)} MB`);
process.exit(0);
