import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, normalize } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { PGlite } from '@electric-sql/pglite';
import { DIST } from '../../shared/paths.js';

/*
 * The embedded Postgres: PGlite (Postgres compiled to WebAssembly) in this process, one connection.
 * A fresh database is never made by PGlite's initdb at start (seconds of CPU, many more on a busy
 * machine): it is unpacked from a template the build makes, the demo database (every service's schema
 * migrated and its demo data written), else an empty cluster (made once per PGlite version); without
 * either it falls back to initdb. The services then apply whatever migration the template lacks.
 */

/** Postgres settings for a small embedded database: the default 128 MB of shared buffers would be most of its memory. */
const SETTINGS = ['shared_buffers = 16MB', 'temp_buffers = 2MB', 'work_mem = 2MB', 'maintenance_work_mem = 16MB', 'wal_buffers = 1MB'];

function pgliteVersion(): string {
  // The package's exports leave out package.json: it is found beside its entry point.
  let directory = dirname(createRequire(import.meta.url).resolve('@electric-sql/pglite'));
  while (!existsSync(join(directory, 'package.json'))) directory = dirname(directory);
  return (JSON.parse(readFileSync(join(directory, 'package.json'), 'utf8')) as { version: string }).version;
}

const TEMPLATES = `${DIST}pglite/`;
/** The empty cluster, for the installed PGlite. */
const baseTemplatePath = () => `${TEMPLATES}base-${pgliteVersion()}.tar.gz`;
/** The demo database, and what it was made from (a digest the build computes). */
const DEMO_TEMPLATE = `${TEMPLATES}demo.tar.gz`;
const DEMO_INPUTS = `${TEMPLATES}demo.inputs`;

export function baseTemplateIsCurrent(): boolean {
  return existsSync(baseTemplatePath());
}

export function demoTemplateIsCurrent(inputs: string): boolean {
  try {
    return readFileSync(DEMO_INPUTS, 'utf8') === inputs && existsSync(DEMO_TEMPLATE);
  } catch {
    return false;
  }
}

/** Packs a database as a template, written whole then renamed: a process that starts meanwhile never reads half of one. */
async function writeTemplate(database: PGlite, path: string): Promise<void> {
  // Written to its files first: a copy that must replay the log starts its sequences further on (ids m67, not m51).
  await database.exec('checkpoint');
  const packed = Buffer.from(await (await database.dumpDataDir('gzip')).arrayBuffer());
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(`${path}.partial`, packed);
  renameSync(`${path}.partial`, path);
}

/** Makes the empty cluster's template (the build runs this when it is missing): initdb once. */
export async function writeBaseTemplate(): Promise<void> {
  const database = await PGlite.create({ postgresqlconf: SETTINGS });
  try {
    for (const stale of existsSync(TEMPLATES) ? readdirSync(TEMPLATES).filter((file) => file.startsWith('base-')) : []) rmSync(`${TEMPLATES}${stale}`);
    await writeTemplate(database, baseTemplatePath());
  } finally {
    await database.close();
  }
}

/** Makes the demo database's template from `database` (the build's, migrated and seeded), recording what it was made from. */
export async function writeDemoTemplate(database: PGlite, inputs: string): Promise<void> {
  await writeTemplate(database, DEMO_TEMPLATE);
  writeFileSync(DEMO_INPUTS, inputs);
}

/** The build's template: the demo database, or the empty cluster (`empty`), or either when the other is missing; none: PGlite runs initdb. */
function template(empty: boolean): Buffer | undefined {
  for (const path of empty ? [baseTemplatePath()] : [DEMO_TEMPLATE, baseTemplatePath()]) {
    try {
      return readFileSync(path);
    } catch {
      // The next one.
    }
  }
  return undefined;
}

/**
 * Unpacks the template (a gzipped tar of PGlite's making: directories and files) into `directory`, with
 * no PGlite started: a first start of an embedded database on disk then starts PGlite once, not twice.
 */
function unpack(packed: Buffer, directory: string): void {
  const tar = gunzipSync(packed);
  const field = (at: number, length: number) => tar.subarray(at, at + length).toString('latin1').replace(/\0.*$/s, '');
  for (let at = 0; at + 512 <= tar.length && tar[at] !== 0; ) {
    const prefix = field(at + 345, 155);
    const path = normalize(join(directory, `${prefix}/${field(at, 100)}`));
    const size = parseInt(field(at + 124, 12).trim() || '0', 8);
    const mode = parseInt(field(at + 100, 8).trim() || '600', 8);
    if (!path.startsWith(`${directory}/`)) throw new Error(`the embedded database's template holds ${path}, outside its directory`);
    const type = field(at + 156, 1);
    if (type === '5') mkdirSync(path, { recursive: true, mode });
    else if (type === '0' || type === '') {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, tar.subarray(at + 512, at + 512 + size), { mode });
    }
    at += 512 + Math.ceil(size / 512) * 512;
  }
}

/** An embedded database that keeps nothing: a copy of the build's demo database, or (`empty`) of the empty cluster. */
export function openInMemory(from?: 'empty'): Promise<PGlite> {
  const packed = template(from === 'empty');
  return PGlite.create({ postgresqlconf: SETTINGS, ...(packed ? { loadDataDir: new Blob([new Uint8Array(packed)]) } : {}) });
}

/**
 * A copy of an open in-memory database (PGlite's clone(): about half the CPU of opening one from a
 * template, nothing unpacked), which reads the files it has not changed from `template`: that stays
 * open as long as the copy.
 */
export async function cloneOf(template: PGlite): Promise<PGlite> {
  const copy = await template.clone();
  if (!(copy instanceof PGlite)) throw new Error('PGlite.clone() answered something other than a PGlite');
  return copy;
}

/**
 * A lock on `directory` for this process: PGlite is Postgres in single-user mode, and two processes on
 * one data directory would corrupt it. A lock left by a process that died is taken over.
 */
function lockDirectory(directory: string): () => void {
  const path = `${directory}.lock`;
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw error;
      const holder = Number(readFileSync(path, 'utf8'));
      if (isAlive(holder)) throw new Error(`${directory} is in use by process ${holder} (one process at a time: stop it first)`, { cause: error });
      unlinkSync(path);
    }
  }
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, as another user's.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Where the embedded database keeps its files in DATA_DIR. */
export const embeddedDirectory = (dataDir: string) => `${dataDir}/pgdata`;

export interface EmbeddedDatabase {
  readonly pglite: PGlite;
  close(): Promise<void>;
}

/** The embedded database kept in `directory` (made from the template the first time), locked to this process until closed. */
export async function openDirectory(directory: string): Promise<EmbeddedDatabase> {
  mkdirSync(dirname(directory), { recursive: true });
  const unlock = lockDirectory(directory);
  try {
    if (!existsSync(join(directory, 'PG_VERSION'))) {
      // Made aside, then renamed into place: a first start killed halfway leaves no half-made database.
      const partial = `${directory}.partial`;
      rmSync(partial, { recursive: true, force: true });
      rmSync(directory, { recursive: true, force: true });
      const packed = template(false);
      if (packed) unpack(packed, partial);
      else await (await PGlite.create(partial, { postgresqlconf: SETTINGS })).close();
      renameSync(partial, directory);
    }
    const pglite = await PGlite.create(directory, { postgresqlconf: SETTINGS });
    return {
      pglite,
      close: async () => {
        try {
          await pglite.close();
        } finally {
          unlock();
        }
      },
    };
  } catch (error) {
    unlock();
    throw error;
  }
}

/** Removes the embedded database kept in `directory`, if any; refused while a process holds it. */
export function removeDirectory(directory: string): boolean {
  if (!existsSync(directory) && !existsSync(`${directory}.partial`)) return false;
  const unlock = lockDirectory(directory);
  try {
    rmSync(directory, { recursive: true, force: true });
    rmSync(`${directory}.partial`, { recursive: true, force: true });
  } finally {
    unlock();
  }
  return true;
}
