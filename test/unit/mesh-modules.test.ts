/** The modules .meshrc.yaml names, and the table the gateway loads them from (one copy each in its bundle). */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { MESHRC_MODULES } from '../../gateway/src/graphql/mesh.js';
import { PROJECT_ROOT } from '../../shared/paths.js';

const meshrc = parse(readFileSync(`${PROJECT_ROOT}.meshrc.yaml`, 'utf8')) as { additionalResolvers: string[] };

describe('the modules .meshrc.yaml names', () => {
  it('are each in the gateway’s table, which holds no other', () => {
    expect(Object.keys(MESHRC_MODULES).sort()).toEqual([...meshrc.additionalResolvers].sort());
  });

  it('load from the table as the modules Mesh expects: the contract’s resolvers', async () => {
    for (const path of meshrc.additionalResolvers) {
      const loaded = (await MESHRC_MODULES[path]?.()) as { resolvers?: unknown } | undefined;
      expect(loaded?.resolvers, path).toBeTypeOf('object');
    }
  });
});
