/**
 * The Dockerfile and the Compose file, checked statically (no Docker engine here): they run the
 * compiled build, and the image holds every file the gateway reads at start.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const dockerfile = readFileSync(`${ROOT}Dockerfile`, 'utf8');
const stages = dockerfile.split(/^FROM /m).slice(1);
const runtime = stages.at(-1) ?? '';

/** The `COPY <source…> <destination>` lines of a stage (without --from copies). */
function copies(stage: string): { sources: string[]; destination: string }[] {
  return [...stage.matchAll(/^COPY (?!--from)(.+)$/gm)].map(([, args]) => {
    const parts = (args ?? '').trim().split(/\s+/);
    return { sources: parts.slice(0, -1), destination: parts.at(-1) ?? '' };
  });
}

describe('the Docker image', () => {
  it('builds in one stage and runs the compiled gateway in the next, on the current Node LTS', () => {
    expect(stages).toHaveLength(2);
    expect(stages[0]).toMatch(/RUN npm run build/);
    expect(runtime).toMatch(/RUN npm ci --omit=dev/);
    expect(runtime).toMatch(/COPY --from=build \/app\/dist \.\/dist/);
    expect(runtime).toContain('CMD ["node", "dist/gateway/src/main.js"]');
    expect(existsSync(`${ROOT}dist/gateway/src/main.js`)).toBe(true);
    expect(runtime).not.toMatch(/tsx/);
    expect(dockerfile).toMatch(/^FROM node:24-/m);
  });

  it('copies only files that exist, and everything the gateway reads at start', () => {
    for (const { sources } of stages.flatMap(copies)) for (const source of sources) expect(existsSync(`${ROOT}${source}`), source).toBe(true);
    const copied = copies(runtime).flatMap(({ sources }) => sources);
    const mesh = parse(readFileSync(`${ROOT}.meshrc.yaml`, 'utf8')) as { sources: { handler: { openapi: { source: string } } }[]; additionalTypeDefs: string };
    const readAtStart = ['.meshrc.yaml', 'package-lock.json', mesh.additionalTypeDefs, ...mesh.sources.map((source) => source.handler.openapi.source)];
    for (const file of readAtStart) {
      const relative = file.replace(/^\.\//, '');
      expect(copied.some((source) => relative === source || relative.startsWith(`${source}/`)), file).toBe(true);
    }
  });
});

describe('the Compose file', () => {
  it('runs every reference service from the build', () => {
    const compose = parse(readFileSync(`${ROOT}docker-compose.yml`, 'utf8')) as { services: Record<string, { command?: string[] }> };
    const commands = Object.values(compose.services).flatMap((service) => (service.command ? [service.command] : []));
    expect(commands).toHaveLength(6);
    for (const command of commands) {
      expect(command.slice(0, 2)).toEqual(['node', 'dist/services/main.js']);
      expect(existsSync(`${ROOT}${command[1] ?? ''}`)).toBe(true);
    }
  });
});
