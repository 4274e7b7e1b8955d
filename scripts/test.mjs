// `npm test`: the static checks (`npm run check`: types and lint over one program) and the test suite
// (with coverage in CI), side by side:
// the suite spends much of its time waiting on the processes and sockets it starts, time the checks
// can use. The checks' output is printed as each finishes, the suite's as it runs. Fails when any fails.
// Plain JavaScript, like the build: it runs before anything is compiled.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

const root = new URL('..', import.meta.url).pathname;
const { scripts } = JSON.parse(readFileSync(`${root}package.json`, 'utf8'));
// As npm runs a script: the project's installed commands first on the PATH.
const env = { ...process.env, PATH: `${root}node_modules/.bin:${process.env.PATH}` };
// Coverage where it is read, in CI (it costs the suite about a fifth more CPU); `npm run coverage` locally.
const suite = ['vitest', 'run', ...(process.env.CI ? ['--coverage'] : []), ...process.argv.slice(2)];

function run(label, command, buffered) {
  const started = performance.now();
  const child = spawn('sh', ['-c', command], { cwd: root, env, stdio: ['ignore', buffered ? 'pipe' : 'inherit', buffered ? 'pipe' : 'inherit'] });
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

const codes = await Promise.all([run('checks (types, lint)', scripts.check, true), run('tests', suite.map((word) => `'${word}'`).join(' '), false)]);
process.exitCode = codes.find((code) => code !== 0) ?? 0;
