import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { restartDelay } from '../../scripts/lib/supervisor.js';
import { servicePort } from '../../shared/upstreams.js';
import { graphql, onlyError } from '../helpers/graphql.js';
import { allGone, commandOf, descendants, environmentOf, launcher, serviceProcess } from '../helpers/launcher.js';
import { login } from '../helpers/login.js';
import { freePortBlock } from '../helpers/ports.js';
import { eventually } from '../helpers/wait.js';

/** A field of live TV and one of on demand, in one query. */
const QUERY = '{ channels { id } movies(limit: 1) { total } }';

/** Whether nothing listens on `url` any more (a killed process's port refuses at once). */
const refused = (url: string) => fetch(url).then(() => false, () => true);

const escaped = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// Whole-stack process tests, as test/http/start.test.ts: nothing waits for a fixed time, only for what
// the stack prints or answers.
describe('npm start keeps its processes running', { timeout: 240_000 }, () => {
  it('restarts a service that dies, as it was started, the gateway answering what it can meanwhile; the launcher runs on', async () => {
    const base = await freePortBlock(7);
    const gateway = `http://127.0.0.1:${base + 6}`;
    const started = launcher({ SERVICES_BASE_PORT: String(base), PORT: String(base + 6) });
    await started.banner();
    const launcherPid = started.child.pid as number;
    const token = await login(gateway, 'alice');
    const channels = () => fetch(`${gateway}/livetv/channels`, { headers: { authorization: `Bearer ${token}` } });
    const killed = serviceProcess(started, 'livetv');
    const startedAs = { command: commandOf(killed), environment: environmentOf(killed) };

    // The launcher is held still while live TV is down (it restarts it within a second or so), so that
    // the gateway is asked in between, however slow this machine.
    process.kill(launcherPid, 'SIGSTOP');
    try {
      process.kill(killed, 'SIGKILL');
      await eventually('live TV to stop listening', () => refused(`http://127.0.0.1:${servicePort('livetv', base)}/health`));
      const partial = await graphql(gateway, QUERY);
      expect(partial.data, partial.text).toEqual({ channels: null, movies: { total: expect.any(Number) } });
      expect(onlyError(partial)).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', path: ['channels'] });
      const unavailable = await channels();
      expect(unavailable.status).toBe(503);
      expect(await unavailable.json()).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
    } finally {
      process.kill(launcherPid, 'SIGCONT');
    }

    await eventually(() => `live TV to serve again; the launcher printed:\n${started.output()}`, () => /^livetv serving again in \d+\.\d s$/m.test(started.output()));
    expect(started.output()).toContain('livetv exited (signal SIGKILL); restarting in 0.25 s (restart 1)\n');
    // Another process, started as the first was: its command line and environment (so its port) the same.
    const restarted = serviceProcess(started, 'livetv');
    expect(restarted).not.toBe(killed);
    expect({ command: commandOf(restarted), environment: environmentOf(restarted) }).toEqual(startedAs);

    const full = await eventually('the gateway to answer every field again', async () => {
      const answer = await graphql(gateway, QUERY);
      return answer.errors === undefined && answer;
    });
    expect((full.data?.channels as unknown[]).length).toBeGreaterThan(0);
    expect((await channels()).status).toBe(200);

    expect(started.child.exitCode, started.output()).toBeNull();
    const pids = descendants(launcherPid);
    process.kill(-launcherPid, 'SIGINT');
    expect(await started.exited(), started.output()).toBe(0);
    await allGone(pids);
    // Ctrl-C reached every process: none was restarted as it stopped.
    expect(started.output().match(/restarting in/g)).toHaveLength(1);
  });

  it('stops everything, exit 1 with what the service printed, when a service that died keeps failing as it restarts', async () => {
    const secrets = mkdtempSync(join(tmpdir(), 'start-restart-'));
    const keyFile = join(secrets, 'playback-signing-key');
    writeFileSync(keyFile, 'a-playback-signing-key\n');
    const base = await freePortBlock(7);
    // The services alone: the gateway has no part in it.
    const started = launcher({ SERVICES_BASE_PORT: String(base), PORT: String(base + 6), PLAYBACK_SIGNING_KEY_FILE: keyFile }, ['--services-only']);
    await started.banner();
    const pids = descendants(started.child.pid as number);

    // Its secret file is gone (a volume unmounted, say): live TV cannot start again.
    rmSync(secrets, { recursive: true });
    process.kill(serviceProcess(started, 'livetv'), 'SIGKILL');
    expect(await started.exited(), started.output()).toBe(1);

    const output = started.output();
    expect(output).toContain('livetv exited (signal SIGKILL); restarting in 0.25 s (restart 1)\n');
    for (const nth of [2, 3, 4, 5]) expect(output).toContain(`livetv exited (code 1) before it was ready; restarting in ${restartDelay(nth) / 1000} s (restart ${nth})\n`);
    expect(output).toMatch(new RegExp(`^restart failed: livetv exited \\(code 1\\) before it was ready, 5 times in a row; it printed:\\n(.+\\n)*?${escaped(`PLAYBACK_SIGNING_KEY_FILE: cannot read ${keyFile} (ENOENT)`)}$`, 'm'));
    expect(output).not.toContain('restart 6');
    await allGone(pids);
    expect(await refused(`http://127.0.0.1:${base}/health`)).toBe(true);
  });
});
