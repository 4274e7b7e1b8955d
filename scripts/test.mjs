// `npm test`: the type check, the lint and the test suite (with coverage in CI), side by side (the suite spends much of its
// time waiting on the processes and sockets it starts, time the checks can use). The checks' output is
// printed as each finishes; the suite's as it runs. Fails when any of them fails.
// Plain JavaScript, like the build: it runs before anything is compiled.
import { spawn } from 'node:child_process';

const bin = (name) => new URL(`../node_modules/.bin/${name}`, import.meta.url).pathname;
// Coverage where it is read, in CI (it costs the suite about a fifth more CPU); `npm run coverage` locally.
const vitestArgs = ['run', ...(process.env.CI ? ['--coverage'] : []), ...process.argv.slice(2)];

function run(label, command, args, { buffered }) {
  const started = performance.now();
  const child = spawn(command, args, { stdio: ['ignore', buffered ? 'pipe' : 'inherit', buffered ? 'pipe' : 'inherit'] });
  const chunks = [];
  child.stdout?.on('data', (chunk) => chunks.push(chunk));
  child.stderr?.on('data', (chunk) => chunks.push(chunk));
  return new Promise((resolve) => {
    child.once('close', (code) => {
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      if (buffered) process.stdout.write(`\n${label}: ${code === 0 ? 'passed' : `FAILED (exit ${code})`} in ${seconds} s\n${code === 0 ? '' : Buffer.concat(chunks).toString()}`);
      resolve(code ?? 1);
    });
  });
}

const typecheck = run('typecheck (tsc, gql-tada check)', process.execPath, ['-e', `
  const { execFileSync } = require('node:child_process');
  execFileSync(${JSON.stringify(bin('tsc'))}, ['--noEmit', '--incremental', '--tsBuildInfoFile', 'node_modules/.cache/tsc/tsbuildinfo'], { stdio: 'inherit' });
  execFileSync(${JSON.stringify(bin('gql-tada'))}, ['check'], { stdio: 'inherit' });
`], { buffered: true });
const lint = run('lint (eslint)', bin('eslint'), ['--max-warnings', '0', '.'], { buffered: true });
const suite = run('tests (vitest)', bin('vitest'), vitestArgs, { buffered: false });

const codes = await Promise.all([typecheck, lint, suite]);
process.exitCode = codes.find((code) => code !== 0) ?? 0;
