import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WAIT_MS } from '../helpers/wait.js';

describe('gateway start-up with a bad configuration', () => {
  it.each([
    [{ PORT: 'abc' }, 'PORT'],
    [{ NODE_ENV: 'production' }, 'JWT_SECRET_KEY or JWKS_URL'],
  ])('%j exits 1 with one clear line and no stack trace, before anything heavy is loaded', (env, named) => {
    const record = join(mkdtempSync(join(tmpdir(), 'imports-')), 'imports.txt');
    const result = spawnSync(process.execPath, ['--import', './test/fixtures/record-imports.mjs', 'dist/gateway/src/main.js'], {
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
    const imported = readFileSync(record, 'utf8').split('\n');
    expect(imported).toContain('zod');
    expect(imported.filter((specifier) => /@graphql-mesh|@apollo|graphql|undici|pino|ioredis|server\.js/.test(specifier))).toEqual([]);
  });
});
