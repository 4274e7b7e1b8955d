import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import type { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import type { Logger } from 'pino';
import { PROJECT_ROOT } from '../../shared/paths.js';
import type { UpstreamName } from '../../shared/upstreams.js';
import type { EmbeddedDatabase } from './embedded.js';
import type { DatabaseSettings } from './environment.js';
import { identifier, Sql, sql } from './sql.js';

/*
 * The services' data, in Postgres: one database, a schema per service (named as the service), made by
 * the versioned migrations in services/migrations/<service>/. The same SQL runs on a real server
 * (DATABASE_URL, a connection pool) and on the embedded one (PGlite, its single connection seen as a
 * pool of one through its node-postgres adapter): the services query both through node-postgres.
 */

/** Where statements run: the database, or one transaction of it. */
export interface Queryable {
  /** The rows a statement answers (columns as it names them: `duration_minutes as "durationMinutes"`). */
  rows<Row>(statement: Sql): Promise<Row[]>;
  /** Its first row, if any. */
  row<Row>(statement: Sql): Promise<Row | undefined>;
  /** Its one row (an `insert … returning`): none is an error. */
  one<Row>(statement: Sql): Promise<Row>;
}

export interface Database extends Queryable {
  /** Runs `work` in one transaction: committed once it resolves, rolled back if it throws. */
  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T>;
}

function queryable(client: pg.Pool | pg.PoolClient): Queryable {
  const rows = async <Row>(statement: Sql) => (await client.query(statement.render())).rows as Row[];
  const row = async <Row>(statement: Sql) => (await rows<Row>(statement))[0];
  return {
    rows,
    row,
    async one<Row>(statement: Sql) {
      const first = await row<Row>(statement);
      if (first === undefined) throw new Error('the statement answered no row');
      return first;
    },
  };
}

function databaseOver(pool: pg.Pool): Database {
  return {
    ...queryable(pool),
    async transaction(work) {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        await client.query('begin');
        const result = await work(queryable(client));
        await client.query('commit');
        return result;
      } catch (error) {
        // A connection that cannot even roll back is not given to anyone else.
        await client.query('rollback').catch((rollbackError: unknown) => {
          broken = rollbackError as Error;
        });
        throw error;
      } finally {
        client.release(broken);
      }
    },
  };
}

/** What a service keeps in its schema besides what its migrations make: its demo data. */
export interface ServiceSchema {
  /** Writes the demo data: once per database (recorded as a migration), in the migrations' transaction. */
  readonly seed?: (tx: Queryable) => Promise<void>;
}

/** The version a schema's demo data is recorded under, beside its migrations'. */
const DEMO_DATA = 'demo-data';

interface Migration {
  readonly version: string;
  readonly text: string;
}

/** A service's migrations, in the order of their numbers: `0001_profiles.sql` is version `0001_profiles`. */
function migrationsOf(name: UpstreamName): Migration[] {
  const directory = `${PROJECT_ROOT}services/migrations/${name}/`;
  return readdirSync(directory)
    .filter((file) => /^\d{4}_[a-z0-9_]+\.sql$/.test(file))
    .sort()
    .map((file) => ({ version: file.slice(0, -'.sql'.length), text: readFileSync(directory + file, 'utf8') }));
}

/** The advisory lock a schema's migrations run under, the same number in every process. */
const lockKey = (name: UpstreamName) => createHash('sha256').update(`tv-streaming migrations: ${name}`).digest().readBigInt64BE().toString();

/**
 * Applies what the service's schema lacks: its pending migrations, then its demo data, in one
 * transaction under an advisory lock. Replicas that start together wait for the first, then find
 * nothing left to do; a failure leaves the schema as it was.
 */
async function migrate(pool: pg.Pool, name: UpstreamName, schema: ServiceSchema, log: Logger): Promise<void> {
  const migrations = migrationsOf(name);
  const applied = sql`${identifier(name)}.schema_migrations`;
  await databaseOver(pool).transaction(async (tx) => {
    await tx.rows(sql`select pg_advisory_xact_lock(${lockKey(name)}::bigint)`);
    await tx.rows(sql`create schema if not exists ${identifier(name)}`);
    await tx.rows(sql`create table if not exists ${applied} (version text primary key, applied_at timestamptz not null default now())`);
    const done = new Set((await tx.rows<{ version: string }>(sql`select version from ${applied}`)).map((row) => row.version));
    for (const { version, text } of migrations) {
      if (done.has(version)) continue;
      // The file's own statements, as written (they take no parameter).
      await tx.rows(new Sql([text], []));
      await tx.rows(sql`insert into ${applied} (version) values (${version})`);
      log.info({ migration: `${name}/${version}` }, 'database migration applied');
    }
    if (schema.seed && !done.has(DEMO_DATA)) {
      await schema.seed(tx);
      await tx.rows(sql`insert into ${applied} (version) values (${DEMO_DATA})`);
      log.info({ migration: `${name}/${DEMO_DATA}` }, 'demo data written');
    }
  });
}

/** A pool and what closing it takes. */
interface Connection {
  readonly pool: pg.Pool;
  close(): Promise<void>;
}

/** PGlite's one connection as a pool of one, kept open while idle (it is in this process: nothing to save). */
async function poolOver(pglite: PGlite): Promise<pg.Pool> {
  const { createPgConfig } = await import('@electric-sql/pglite/node-postgres');
  return new pg.Pool({ ...(createPgConfig(pglite) as pg.PoolConfig), max: 1, idleTimeoutMillis: 0 });
}

/** How long a server that is not up yet (starting beside the services) is waited for. */
const SERVER_WAIT_MS = 30_000;
/** Errors that mean the server is not there yet, rather than that it refuses. */
const NOT_UP_YET = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', '57P03']);

async function connectPostgres(settings: Extract<DatabaseSettings, { kind: 'postgres' }>, log: Logger): Promise<Connection> {
  // The password goes into the URL: node-postgres lets a URL's parts win over the options beside it.
  const url = new URL(settings.url);
  if (settings.password) url.password = encodeURIComponent(settings.password);
  const pool = new pg.Pool({ connectionString: url.href, connectionTimeoutMillis: 10_000 });
  // A connection that breaks while idle (the server restarted) is dropped from the pool; without a listener it would end the process.
  pool.on('error', (error) => log.warn({ err: error }, 'an idle database connection failed'));
  const giveUpAt = Date.now() + SERVER_WAIT_MS;
  for (let attempt = 0; ; attempt++) {
    try {
      await pool.query('select 1');
      return { pool, close: () => pool.end() };
    } catch (error) {
      const code = (error as { code?: string }).code ?? '';
      if (!NOT_UP_YET.has(code) || Date.now() > giveUpAt) {
        await pool.end();
        const { hostname, port } = new URL(settings.url);
        throw new Error(`cannot use the database at ${hostname}:${port || 5432} (DATABASE_URL): ${(error as Error).message}`, { cause: error });
      }
      if (attempt === 0) log.info(`waiting for the database at ${new URL(settings.url).host}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

async function connectEmbedded(open: () => Promise<EmbeddedDatabase>): Promise<Connection> {
  const embedded = await open();
  const pool = await poolOver(embedded.pglite);
  return {
    pool,
    close: async () => {
      await pool.end();
      await embedded.close();
    },
  };
}

/**
 * An in-memory database with every given schema migrated and seeded, made once a process (from the
 * build's demo database, so mostly already done) and kept open: each in-memory database of the process
 * is a clone of it (the tests start many), which reads the files it has not changed from it, so it
 * stays open as long as the process.
 */
const migratedTemplates = new Map<string, Promise<PGlite>>();
function migratedTemplate(schemas: readonly (readonly [UpstreamName, ServiceSchema])[], log: Logger): Promise<PGlite> {
  const key = schemas.map(([name]) => name).join(',');
  let template = migratedTemplates.get(key);
  if (!template) {
    template = (async () => {
      const pglite = await (await import('./embedded.js')).openInMemory();
      try {
        await migrateAll(pglite, schemas, log);
        return pglite;
      } catch (error) {
        await pglite.close();
        throw error;
      }
    })();
    template.catch(() => migratedTemplates.delete(key));
    migratedTemplates.set(key, template);
  }
  return template;
}

/** Applies every given schema's migrations and demo data to an embedded database, then writes them to its files. */
async function migrateAll(pglite: PGlite, schemas: readonly (readonly [UpstreamName, ServiceSchema])[], log: Logger): Promise<void> {
  const pool = await poolOver(pglite);
  try {
    for (const [name, schema] of schemas) await migrate(pool, name, schema, log);
  } finally {
    await pool.end();
  }
  // Written to its files: a copy that must replay the log starts its sequences further on (ids m67, not m51).
  await pglite.exec('checkpoint');
}

/** The build's demo database: every given schema migrated and seeded, from the empty cluster (`inputs`: what it is made from). */
export async function writeDemoDatabase(schemas: readonly (readonly [UpstreamName, ServiceSchema])[], log: Logger, inputs: string): Promise<void> {
  const { openInMemory, writeDemoTemplate } = await import('./embedded.js');
  const pglite = await openInMemory('empty');
  try {
    await migrateAll(pglite, schemas, log);
    await writeDemoTemplate(pglite, inputs);
  } finally {
    await pglite.close();
  }
}

/** The databases of the services of one process. */
export interface Databases {
  /** The named service's database, its migrations applied and its demo data written. */
  open(name: UpstreamName, schema: ServiceSchema): Promise<Database>;
  /** Closes the connections (and the embedded database) opened. */
  close(): Promise<void>;
}

/**
 * Where the services of this process keep their data, each in its schema of one database: a real
 * server's (a pool), or the embedded one, in memory or in DATA_DIR (which one process holds at a time:
 * `npm start` serves it to the services' processes from one of its own, services/database.ts).
 * `schemas`: every schema the process's services may open, for the in-memory databases' template.
 */
export function openDatabases(settings: DatabaseSettings, log: Logger, schemas: readonly (readonly [UpstreamName, ServiceSchema])[] = []): Databases {
  let connection: Promise<Connection> | undefined;
  const connect = (): Promise<Connection> => {
    switch (settings.kind) {
      case 'postgres':
        return connectPostgres(settings, log);
      // PGlite is loaded only where it runs: the services of `npm start` reach theirs as a server.
      case 'memory':
        return connectEmbedded(async () => {
          const { cloneOf, openInMemory } = await import('./embedded.js');
          const pglite = schemas.length > 0 ? await cloneOf(await migratedTemplate(schemas, log)) : await openInMemory();
          return { pglite, close: () => pglite.close() };
        });
      case 'embedded':
        return connectEmbedded(async () => {
          const { embeddedDirectory, openDirectory } = await import('./embedded.js');
          return openDirectory(embeddedDirectory(settings.dataDir));
        });
    }
  };
  return {
    async open(name: UpstreamName, schema: ServiceSchema) {
      connection ??= connect();
      const { pool } = await connection;
      await migrate(pool, name, schema, log);
      return databaseOver(pool);
    },
    async close() {
      const opened = connection;
      connection = undefined;
      await (await opened?.catch(() => undefined))?.close();
    },
  };
}
