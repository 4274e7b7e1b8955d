import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import pg from 'pg';
import { useFixture } from './fixture.js';
import { freePortBlock } from './ports.js';
import { eventually, within } from './wait.js';

/** How long initdb may take on a busy two-core machine. */
const INITDB_MS = 60_000;

/**
 * Where the Postgres server's programs are: on the PATH, else where Debian's `postgresql` package puts
 * them, /usr/lib/postgresql/<version>/bin (the newest), which it leaves off the PATH.
 */
function serverBinaries(): string {
  for (const directory of (process.env.PATH ?? '').split(delimiter)) {
    const initdb = join(directory, 'initdb');
    if (existsSync(initdb) && existsSync(join(directory, 'postgres'))) return dirname(realpathSync(initdb));
  }
  const debian = '/usr/lib/postgresql';
  const versions = existsSync(debian) ? readdirSync(debian).filter((version) => existsSync(join(debian, version, 'bin', 'initdb'))) : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  if (newest === undefined) throw new Error('no Postgres server found (initdb, postgres): install the Debian postgresql package (.ci/run does)');
  return join(debian, newest, 'bin');
}

/** The `postgres` user's ids, from /etc/passwd: the server refuses to run as root. */
function postgresUser(): { uid: number; gid: number } {
  const entry = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((line) => line.startsWith('postgres:'));
  const [, , uid, gid] = entry?.split(':') ?? [];
  if (uid === undefined || gid === undefined) throw new Error('the tests run as root and there is no postgres user to run the Postgres server as (the postgresql package makes one)');
  return { uid: Number(uid), gid: Number(gid) };
}

export interface RunningPostgres {
  /** The `postgres` user's password: the server asks it of every connection. */
  readonly password: string;
  /** A new, empty database of its own, for one test: its URL, the password in it. */
  createDatabase(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * A real Postgres server of the test's own: a cluster made in a temporary directory (initdb), on a free
 * loopback port, no Unix socket, fsync off (a test's data needs no crash safety); as the `postgres` user
 * when the tests run as root. It asks a password (SCRAM), as a deployed one does.
 */
export async function startPostgres(): Promise<RunningPostgres> {
  const binaries = serverBinaries();
  const runAs = process.getuid?.() === 0 ? postgresUser() : undefined;
  const directory = mkdtempSync(join(tmpdir(), 'postgres-test-'));
  if (runAs) chownSync(directory, runAs.uid, runAs.gid);
  const data = join(directory, 'data');
  const password = randomBytes(12).toString('hex');
  const passwordFile = join(directory, 'password');
  writeFileSync(passwordFile, password);
  if (runAs) chownSync(passwordFile, runAs.uid, runAs.gid);
  execFileSync(join(binaries, 'initdb'), ['-D', data, '-U', 'postgres', `--pwfile=${passwordFile}`, '--auth=scram-sha-256', '--encoding=UTF8', '--no-locale', '--no-sync'], { stdio: 'pipe', timeout: INITDB_MS, ...runAs });
  const port = await freePortBlock(1);
  const settings = ['listen_addresses=127.0.0.1', 'unix_socket_directories=', 'fsync=off', 'synchronous_commit=off', 'full_page_writes=off', 'max_connections=200'];
  const child: ChildProcess = spawn(join(binaries, 'postgres'), ['-D', data, '-p', String(port), ...settings.flatMap((setting) => ['-c', setting])], { stdio: ['ignore', 'ignore', 'pipe'], ...runAs });
  let output = '';
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  // Whatever happens to this process, its server goes with it.
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);
  const url = (database: string) => `postgres://postgres:${password}@127.0.0.1:${port}/${database}`;
  const admin = new pg.Pool({ connectionString: url('postgres'), max: 2 });
  // Its connections end with the server: nothing to report.
  admin.on('error', () => undefined);
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`postgres exited (code ${code}) before it answered:\n${output}`))));
  exited.catch(() => undefined);
  await Promise.race([eventually(() => `postgres on port ${port} to answer; it printed:\n${output}`, () => admin.query('select 1').then(() => true)), exited]);
  let databases = 0;
  return {
    password,
    async createDatabase() {
      const name = `test_${++databases}`;
      await admin.query(`create database ${pg.escapeIdentifier(name)}`);
      return url(name);
    },
    async stop() {
      await admin.end();
      // SIGINT: the fast shutdown, which disconnects the clients a test left open.
      await within(
        () => `postgres to exit after SIGINT; it printed:\n${output}`,
        new Promise<void>((resolve) => {
          if (child.exitCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGINT');
        }),
      );
      process.removeListener('exit', kill);
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

/** `startPostgres` for the whole describe: started before its tests, stopped after. */
export function usePostgres(): RunningPostgres {
  return useFixture(() => startPostgres(), (server) => server.stop());
}
