import { writeFileSync } from 'node:fs';
import { allApiTypes } from './lib/api-types.js';

/** `npm run api-types`: rewrites shared/api/*.d.ts from the specs in schemas/. */
for (const [file, text] of await allApiTypes()) {
  writeFileSync(file, text);
  console.log(`wrote ${file}`);
}
