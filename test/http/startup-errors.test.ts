import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { importedModules, RECORD_IMPORTS_PRELOAD } from '../helpers/imports.js';
import { WAIT_MS } from '../helpers/wait.js';

describe('gateway start-up with a bad configuration', () => {
  it.each([
    [{ PORT: 'abc' }, 'PORT'],
    [{ NODE_ENV: 'production' }, 'JWT_SECRET_KEY or JWKS_URL'],
  ])('%j exits 1 with one clear line and no stack trace, before anything heavy is loaded', (env, named) => {
    const record = join(mkdtempSync(join(tmpdir(), 'imports-')), 'imports.txt');
    const result = spawnSync(process.execPath, ['--import', RECORD_IMPORTS_PRELOAD, 'dist/gateway/src/main.js'], {
      env: { PATH: process.env.PATH, RECORD_IMPORTS: record, ...env },
      encoding: 'utf8',
      // A gateway that took the configuration would serve on: killed, and the test says so.
      timeout: WAIT_MS,
    });
    expect(result.error, `waited ${WAIT_MS} ms for the gateway to exit; it printed:\n${result.stdout}${result.stderr}`).toBeUndefined();
    expect(result.status).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^gateway: configuration error: /);
    expect(lines[0]).toContain(named);
    expect(result.stderr).not.toMatch(/\bat .+:\d+:\d+/);
    expect(result.stdout).toBe('');
    // The gateway's bundle: its first files hold the configuration and zod, the server is in a chunk it never loaded.
    const imported = importedModules(record);
    expect(imported.filter((module) => module.includes('node_modules/zod/'))).not.toEqual([]);
    expect(imported.filter((module) => /@graphql-mesh|@apollo|graphql|undici|pino|ioredis|server\.ts/.test(module))).toEqual([]);
  });
});
