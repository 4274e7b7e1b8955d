/**
 * `npm run documents`: extracts the typed TV app's operations (examples/tv-app/operations.ts) into
 * examples/tv-app/trusted-documents.json, keyed by their SHA-256: the manifest a gateway with
 * TRUSTED_DOCUMENTS loads. A test keeps the committed manifest equal to what this writes.
 */
import { writeFileSync } from 'node:fs';
import { TV_APP_MANIFEST, tvAppManifest } from './lib/trusted-manifest.js';

writeFileSync(TV_APP_MANIFEST, tvAppManifest());
