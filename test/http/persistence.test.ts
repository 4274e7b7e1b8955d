/**
 * The reference services keep their data (services/lib/database.ts), the same on the embedded database
 * (PGlite) as on a real Postgres server (the Debian package's, a cluster of this file's own): what is
 * written through the gateway survives a restart, migrations run once however many start together,
 * the database decides which of simultaneous registrations of a name wins, and a registration cut in
 * two by user management dying halfway leaves no account half made.
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it, onTestFinished } from 'vitest';
import { spawnProcess, waitUntilReady, type SpawnedProcess } from '../../scripts/lib/processes.js';
import { openInMemory } from '../../services/lib/embedded.js';
import { serveEmbedded } from '../../services/lib/embedded-server.js';
import { IN_MEMORY, serviceEnvironment } from '../../services/lib/environment.js';
import { startService } from '../../services/registry.js';
import type { UpstreamName } from '../../shared/upstreams.js';
import { startGateway } from '../helpers/gateway.js';
import { graphql } from '../helpers/graphql.js';
import { login } from '../helpers/login.js';
import { freePortBlock } from '../helpers/ports.js';
import { usePostgres } from '../helpers/postgres.js';
import { startStack } from '../helpers/stack.js';
import { TEST_SECRET } from '../helpers/tokens.js';
import { eventually, waitingFor, within } from '../helpers/wait.js';

/** Where one test's services keep their data. */
interface Storage {
  /** The in-process services' settings: the database itself (DATA_DIR), or a server's URL. */
  readonly direct: NodeJS.ProcessEnv;
  close(): Promise<void>;
}

/** Storage reached as a server (DATABASE_URL) by services in other processes, and by the test's own SQL. */
interface ServedStorage {
  readonly url: string;
  close(): Promise<void>;
}

interface Backend {
  readonly name: string;
  /** Storage that outlives the services (a restart finds it). */
  storage(): Promise<Storage>;
  /** Storage for one run of the services, migrated already where that is cheaper (the tests' default). */
  throwaway(): Promise<Storage>;
  /** A database served to other processes: `empty`, or with the demo data already where that is cheaper. */
  served(empty: boolean): Promise<ServedStorage>;
}

/** A temporary directory, removed when the test is over. */
function temporaryDirectory(): string {
  const directory = mkdtempSync(join(tmpdir(), 'persistence-'));
  onTestFinished(() => rmSync(directory, { recursive: true, force: true }));
  return directory;
}

const postgres = usePostgres();

const BACKENDS: readonly Backend[] = [
  {
    name: 'the embedded database (PGlite)',
    storage: () => Promise.resolve({ direct: { DATA_DIR: temporaryDirectory() }, close: () => Promise.resolve() }),
    throwaway: () => Promise.resolve({ direct: { DATA_DIR: IN_MEMORY }, close: () => Promise.resolve() }),
    // As `npm start` serves it to the services' processes (services/database.ts), kept in memory here.
    async served(empty) {
      const pglite = await openInMemory(empty ? 'empty' : undefined);
      const server = await serveEmbedded(pglite, '127.0.0.1', 0);
      return {
        url: `postgres://postgres@127.0.0.1:${server.port}/postgres`,
        close: async () => {
          await server.close();
          await pglite.close();
        },
      };
    },
  },
  {
    name: 'a real Postgres server',
    async storage() {
      return { direct: { DATABASE_URL: await postgres.createDatabase() }, close: () => Promise.resolve() };
    },
    async throwaway() {
      return this.storage();
    },
    async served() {
      return { url: await postgres.createDatabase(), close: () => Promise.resolve() };
    },
  },
];

const json = (body: unknown) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const bearer = (token: string, init: RequestInit = {}) => ({ ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${token}` } });

/** One statement's rows, on the database at `url`. */
async function rowsAt<Row>(url: string, text: string, values: unknown[] = []): Promise<Row[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text, values)).rows as Row[];
  } finally {
    await client.end();
  }
}

/** Whether `username` has a credential (authentication) or a profile (user management), on the database at `url`. */
async function accountOf(url: string, username: string): Promise<{ credential?: string; profile: boolean }> {
  const [credential] = await rowsAt<{ status: string }>(url, 'select status from auth.credentials where username = $1', [username]);
  const profiles = await rowsAt(url, 'select 1 from users.profiles where username = $1', [username]);
  return { ...(credential ? { credential: credential.status } : {}), profile: profiles.length > 0 };
}

describe.each(BACKENDS)('the reference services on $name', (backend) => {
  it('keep what was written through the gateway, REST and GraphQL, across a restart of the services', async () => {
    const storage = await backend.storage();
    onTestFinished(() => storage.close());
    const first = await startStack({ upstreams: 'reference', serviceEnv: storage.direct });
    const url = first.gateway.url;
    const admin = await login(url, 'admin');

    // REST: an account, its email, its plan; a movie and a channel; a grant.
    const registration = await fetch(`${url}/auth/register`, json({ username: 'dave', password: 'dave-password', email: 'dave@example.com' }));
    expect(registration.status).toBe(201);
    const { id: daveId } = (await registration.json()) as { id: string };
    const dave = await login(url, 'dave');
    expect((await fetch(`${url}/users/me`, bearer(dave, { ...json({ email: 'dave@tv.example' }), method: 'PATCH' }))).status).toBe(200);
    expect((await fetch(`${url}/subscriptions`, bearer(dave, json({ planId: 'basic' })))).status).toBe(201);
    const movie = (await (await fetch(`${url}/admin/ondemand/movies`, bearer(admin, json({ title: 'Kept Across Restarts', genres: ['documentary'], free: false })))).json()) as { id: string };
    const channel = (await (await fetch(`${url}/admin/livetv/channels`, bearer(admin, json({ name: 'Durable TV', number: 777, free: false })))).json()) as { id: string };
    expect((await fetch(`${url}/admin/rights/entitlements`, bearer(admin, json({ userId: daveId, contentId: `channel:${channel.id}` })))).status).toBe(201);

    // GraphQL: another account and its plan; a movie and a channel.
    const registered = await graphql(url, 'mutation { register(username: "erin", password: "erin-password", email: "erin@example.com") { id } }');
    expect(registered.errors, registered.text).toBeUndefined();
    const erin = await login(url, 'erin', 'graphql');
    expect((await graphql(url, 'mutation { subscribe(planId: "premium") { planId } }', { token: erin })).data).toEqual({ subscribe: { planId: 'premium' } });
    const created = await graphql(url, 'mutation { m: adminCreateMovie(input: { title: "Kept Too", genres: ["drama"], free: true }) { id } c: adminCreateChannel(input: { name: "Durable Two", number: 778, free: true }) { id } }', { token: admin });
    expect(created.errors, created.text).toBeUndefined();
    const { m, c } = created.data as { m: { id: string }; c: { id: string } };
    await first.close();

    const second = await startStack({ upstreams: 'reference', serviceEnv: storage.direct });
    onTestFinished(() => second.close());
    const again = second.gateway.url;
    const daveAgain = await login(again, 'dave');
    expect(await (await fetch(`${again}/users/me`, bearer(daveAgain))).json()).toMatchObject({ id: daveId, username: 'dave', email: 'dave@tv.example' });
    expect(await (await fetch(`${again}/subscriptions/me`, bearer(daveAgain))).json()).toMatchObject({ planId: 'basic', status: 'active' });
    expect(await (await fetch(`${again}/ondemand/movies/${movie.id}`, bearer(daveAgain))).json()).toMatchObject({ title: 'Kept Across Restarts' });
    // The subscription's entitlements and the grant came back with them.
    const entitled = (await (await fetch(`${again}/subscriptions/entitlements?contentIds=movie:${movie.id},channel:${channel.id},channel:c2`, bearer(daveAgain))).json()) as { items: { reason: string }[] };
    expect(entitled.items.map((item) => item.reason)).toEqual(['subscription', 'grant', 'subscription_required']);
    const read = await graphql(again, `{ me { username subscription { planId } } movie(id: "${m.id}") { title } channel(id: "${c.id}") { name number } movies { total } channels { id } }`, { token: await login(again, 'erin', 'graphql') });
    expect(read.errors, read.text).toBeUndefined();
    expect(read.data).toMatchObject({ me: { username: 'erin', subscription: { planId: 'premium' } }, movie: { title: 'Kept Too' }, channel: { name: 'Durable Two', number: 778 } });
    // The demo data was written once: 50 movies and 24 channels, and the four added.
    expect((read.data as { movies: { total: number } }).movies.total).toBe(52);
    expect((read.data as { channels: unknown[] }).channels).toHaveLength(26);
  });

  it('apply each migration, and the demo data, once, when three replicas of three services start together on an empty database', async () => {
    const storage = await backend.served(true);
    onTestFinished(() => storage.close());
    const env = serviceEnvironment({ LOG_LEVEL: 'silent', JWT_SECRET_KEY: TEST_SECRET, DATABASE_URL: storage.url });
    const names: UpstreamName[] = ['auth', 'users', 'rights'];
    // Each replica with its own pool, as in its own process.
    const replicas = await Promise.all(names.flatMap((name) => [1, 2, 3].map(() => startService(name, env, '127.0.0.1', 0))));
    onTestFinished(() => Promise.all(replicas.map((replica) => replica.close())).then(() => undefined));
    for (const name of names) {
      const applied = await rowsAt<{ version: string; times: string }>(storage.url, `select version, count(*) as times from ${pg.escapeIdentifier(name)}.schema_migrations group by version order by version`);
      expect(applied.map((row) => [row.version, Number(row.times)]), name).toEqual([...applied.map((row) => row.version)].sort().map((version) => [version, 1]));
      expect(applied.map((row) => row.version), name).toContain('demo-data');
    }
    expect(await rowsAt(storage.url, 'select count(*)::int as n from auth.credentials')).toEqual([{ n: 3 }]);
    expect(await rowsAt(storage.url, 'select count(*)::int as n from users.profiles')).toEqual([{ n: 3 }]);
    expect(await rowsAt(storage.url, 'select count(*)::int as n from rights.plans')).toEqual([{ n: 2 }]);
    // alice's and admin's premium: movies and channels each.
    expect(await rowsAt(storage.url, 'select count(*)::int as n from rights.subscription_entitlements')).toEqual([{ n: 4 }]);
  });

  it('give one of 50 simultaneous registrations of one username its 201, and the other 49 a 409: one account', async () => {
    const storage = await backend.throwaway();
    onTestFinished(() => storage.close());
    const stack = await startStack({ upstreams: 'reference', serviceEnv: storage.direct });
    onTestFinished(() => stack.close());
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => fetch(`${stack.gateway.url}/auth/register`, json({ username: 'popular', password: `password-number-${i}`, email: `popular${i}@example.com` }))));
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.filter((status) => status === 201)).toHaveLength(1);
    expect(statuses.filter((status) => status === 409)).toHaveLength(49);
    const winner = statuses.indexOf(201);
    const signedIn = await fetch(`${stack.gateway.url}/auth/login`, json({ username: 'popular', password: `password-number-${winner}` }));
    expect(signedIn.status).toBe(200);
    const profiles = (await (await fetch(`${stack.gateway.url}/admin/users?limit=100`, bearer(await login(stack.gateway.url, 'admin')))).json()) as { username: string; email: string }[];
    expect(profiles.filter((profile) => profile.username === 'popular')).toEqual([expect.objectContaining({ email: `popular${winner}@example.com` })]);
  });

  describe('when user management dies in the middle of a registration', () => {
    /** User management in a process of its own, on `port`, its data at `url`. */
    async function spawnUsers(port: number, url: string): Promise<SpawnedProcess> {
      const users = spawnProcess({ label: 'users', args: ['dist/services/main.js', 'users'], env: { PATH: process.env.PATH, SERVICES_BASE_PORT: String(port - 1), LOG_LEVEL: 'silent', JWT_SECRET_KEY: TEST_SECRET, DATABASE_URL: url } });
      onTestFinished(() => void users.child.kill('SIGKILL'));
      await waitUntilReady({ label: 'users', url: `http://127.0.0.1:${port}/health`, child: users.child, output: users.output, signal: waitingFor('user management to start') });
      return users;
    }

    /**
     * A proxy in front of user management that, at the first profile it is asked to create, kills it
     * (SIGKILL): before passing the call on, or once user management has made the profile and before
     * its answer goes back. The caller sees the connection break.
     */
    function killingProxy(target: number, kill: () => void, when: 'before' | 'after'): Promise<Server> {
      let armed = true;
      const server = createServer((req: IncomingMessage, res: ServerResponse) => {
        const fatal = armed && req.method === 'POST' && req.url === '/internal/users';
        if (fatal) armed = false;
        if (fatal && when === 'before') {
          kill();
          return void res.destroy();
        }
        const forwarded = request({ host: '127.0.0.1', port: target, method: req.method, path: req.url, headers: req.headers }, (answer) => {
          if (fatal) {
            answer.resume();
            kill();
            return void res.destroy();
          }
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        });
        forwarded.on('error', () => res.destroy());
        req.pipe(forwarded);
      });
      onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
      return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
    }

    it.each(['before', 'after'] as const)('%s making the profile: a clear 503, no account half made, and the name free again once it is back', async (when) => {
      const storage = await backend.served(false);
      onTestFinished(() => storage.close());
      const usersPort = await freePortBlock(1);
      const users = await spawnUsers(usersPort, storage.url);
      const proxy = await killingProxy(usersPort, () => users.child.kill('SIGKILL'), when);
      // Authentication in this process, calling user management through the proxy; a REST gateway in front of both.
      const env = serviceEnvironment({ LOG_LEVEL: 'silent', JWT_SECRET_KEY: TEST_SECRET, DATABASE_URL: storage.url });
      env.urls.users = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
      const auth = await startService('auth', env, '127.0.0.1', 0);
      onTestFinished(() => auth.close());
      const gateway = await startGateway({ ...env.urls, auth: auth.url, users: `http://127.0.0.1:${usersPort}` }, { JWT_SECRET_KEY: TEST_SECRET }, { graphql: false });
      onTestFinished(() => gateway.close());
      const register = () => fetch(`${gateway.url}/auth/register`, json({ username: 'frank', password: 'frank-password', email: 'frank@example.com' }));

      // Authentication says why (`The user management service is unavailable`); the gateway, which keeps an
      // upstream's internals to itself, says which service failed.
      const cut = await register();
      expect(cut.status).toBe(503);
      expect(await cut.json()).toMatchObject({ status: 503, title: 'Service Unavailable', detail: 'The authentication service failed to handle the request' });
      await within('user management to be dead', users.exited);
      // While it is away the name stays reserved (the profile it made, if it made one, is still there), and the account cannot be used.
      expect(await accountOf(storage.url, 'frank')).toEqual({ credential: 'pending', profile: when === 'after' });
      expect((await fetch(`${gateway.url}/auth/login`, json({ username: 'frank', password: 'frank-password' }))).status).toBe(401);
      expect((await register()).status).toBe(409);

      await spawnUsers(usersPort, storage.url);
      // Undone once it is back: the profile it may have made, then the credential.
      await eventually('the half-made registration to be undone', async () => JSON.stringify(await accountOf(storage.url, 'frank')) === JSON.stringify({ profile: false }));
      const whole = await register();
      expect(whole.status).toBe(201);
      expect(await accountOf(storage.url, 'frank')).toEqual({ credential: 'active', profile: true });
      expect((await fetch(`${gateway.url}/auth/login`, json({ username: 'frank', password: 'frank-password' }))).status).toBe(200);
    });
  });
});

describe('the reference services on a Postgres server that asks a password', () => {
  it('take it from DATABASE_PASSWORD_FILE (a Compose or Kubernetes secret), over a URL without one, and refuse to start without it', async () => {
    const url = new URL(await postgres.createDatabase());
    url.password = '';
    const file = join(temporaryDirectory(), 'db_password');
    writeFileSync(file, `${postgres.password}\n`);
    const stack = await startStack({ upstreams: 'reference', serviceEnv: { DATABASE_URL: url.href, DATABASE_PASSWORD_FILE: file } });
    onTestFinished(() => stack.close());
    expect((await fetch(`${stack.gateway.url}/auth/login`, json({ username: 'alice', password: 'alice-password' }))).status).toBe(200);
    const refused = startStack({ upstreams: 'reference', serviceEnv: { DATABASE_URL: url.href } });
    await expect(refused).rejects.toThrow(new RegExp(`^cannot use the database at 127\\.0\\.0\\.1:${url.port} \\(DATABASE_URL\\)`));
    await expect(refused).rejects.not.toThrow(postgres.password);
  });
});
