import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { servicePort, type UpstreamName } from '../../shared/upstreams.js';
import { launcher } from '../helpers/launcher.js';
import { freePortBlock } from '../helpers/ports.js';
import { WAIT_MS } from '../helpers/wait.js';

const json = (body: unknown) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
/** An admin, as the gateway vouches for one to the services. */
const ADMIN = { 'x-user-id': '3', 'x-user-roles': 'user,admin' };

/** `npm run reset-data` on `dataDir`: its exit code and what it printed. */
function resetData(dataDir: string): { status: number | null; output: string } {
  const run = spawnSync(process.execPath, ['dist/scripts/reset-data.js'], { env: { ...process.env, DATA_DIR: dataDir }, encoding: 'utf8', timeout: WAIT_MS });
  return { status: run.status, output: run.stdout + run.stderr };
}

// What a new user tried: an account registered, and a movie an admin added, are there after the
// services are stopped and started again (through the gateway: persistence.test.ts; here the launcher
// and its database process, without the gateway). Nothing waits for a fixed time.
describe('npm run start:services, with the embedded database', { timeout: 240_000 }, () => {
  it('keeps an account and a movie across a restart, in DATA_DIR; reset-data empties it, never while it is in use', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'start-data-'));
    onTestFinished(() => rmSync(dataDir, { recursive: true, force: true }));
    const base = await freePortBlock(7);
    const url = (name: UpstreamName, path: string) => `http://127.0.0.1:${servicePort(name, base)}${path}`;
    const env = { SERVICES_BASE_PORT: String(base), PORT: String(base + 6), DATA_DIR: dataDir };

    const first = launcher(env, ['--services-only']);
    await first.banner();
    expect(first.output()).toMatch(/database ready in \d+\.\d s/);
    expect(first.output()).toContain(`embedded (PGlite), kept in ${dataDir}`);
    const registered = await fetch(url('auth', '/auth/register'), json({ username: 'grace', password: 'grace-password', email: 'grace@example.com' }));
    expect(registered.status).toBe(201);
    const added = await fetch(url('ondemand', '/admin/ondemand/movies'), { ...json({ title: 'Still Here', genres: ['drama'], free: true }), headers: { 'content-type': 'application/json', ...ADMIN } });
    const { id } = (await added.json()) as { id: string };
    process.kill(-(first.child.pid as number), 'SIGINT');
    expect(await first.exited(), first.output()).toBe(0);

    const second = launcher(env, ['--services-only']);
    onTestFinished(() => void second.child.kill('SIGKILL'));
    await second.banner();
    expect((await fetch(url('auth', '/auth/login'), json({ username: 'grace', password: 'grace-password' }))).status).toBe(200);
    expect(await (await fetch(url('ondemand', `/ondemand/movies/${id}`))).json()).toMatchObject({ id, title: 'Still Here' });
    // The demo data was written once.
    expect(await (await fetch(url('ondemand', '/ondemand/movies?limit=1'))).json()).toMatchObject({ total: 51 });

    const refused = resetData(dataDir);
    expect(refused.status).toBe(1);
    expect(refused.output).toMatch(/in use by process \d+ \(one process at a time: stop it first\)/);
    process.kill(-(second.child.pid as number), 'SIGINT');
    expect(await second.exited(), second.output()).toBe(0);
    const reset = resetData(dataDir);
    expect(reset, reset.output).toMatchObject({ status: 0 });
    expect(existsSync(join(dataDir, 'pgdata'))).toBe(false);
  });
});
