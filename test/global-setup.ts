import { execFileSync } from 'node:child_process';

/** Tests that start real processes run the build, as production does: it is brought up to date first. */
export default function buildFirst(): void {
  execFileSync(process.execPath, ['scripts/build.mjs', '--if-stale'], { stdio: 'inherit' });
}
