import { execFileSync } from 'node:child_process';

/** How long bringing the build up to date may take (a whole build, on a busy two-core machine). */
const BUILD_MS = 180_000;

/** Tests that start real processes run the build, as production does: it is brought up to date first. */
export default function buildFirst(): void {
  try {
    execFileSync(process.execPath, ['scripts/build.mjs', '--if-stale'], { stdio: 'inherit', timeout: BUILD_MS });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ETIMEDOUT') throw new Error(`waited ${BUILD_MS} ms for the build to come up to date`, { cause: error });
    throw error;
  }
}
