/**
 * `npm run bench`: the gateway measured side by side with the peers a team would pick instead, rounds
 * alternating in one run; every round is written to bench/RESULTS.md with the machine and its load.
 * Usage: npm run bench [-- --seconds 5 --rounds 3 --only rest|graphql|cluster]
 */
import { writeFileSync } from 'node:fs';
import { ensurePeers, finish, machine, stopAfter, table } from './lib.js';
import { clusterSection } from './cluster.js';
import { graphqlSection } from './graphql-http.js';
import { restSection, type Section } from './rest.js';

const argument = (name: string, fallback: number) => {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? fallback : Number(process.argv[index + 1]);
};
const seconds = argument('seconds', 5);
const rounds = argument('rounds', 3);
stopAfter((seconds * 20 * rounds + 400) * 1000);

ensurePeers();
const before = machine();
const started = new Date();
try {
  const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
  const sections: Section[] = [];
  if (only === undefined || only === 'rest') sections.push(await restSection(seconds, rounds));
  if (only === undefined || only === 'graphql') sections.push(await graphqlSection(seconds, rounds));
  if (only === undefined || only === 'cluster') sections.push(await clusterSection(seconds, rounds));
  const text = [
    '# Benchmark results',
    '',
    `Written by \`npm run bench\` on ${started.toISOString()} (${rounds} alternating rounds of ${seconds} s per case, autocannon, loopback).`,
    '',
    `- machine before: ${before}`,
    `- machine after: ${machine()}`,
    '',
    ...sections.flatMap((section) => [`## ${section.title}`, '', ...section.summary.map((line) => `- ${line}`), '', table(section.rounds), '']),
  ].join('\n');
  writeFileSync(new URL('./RESULTS.md', import.meta.url), text);
  console.log(text);
} catch (error) {
  // finish() exits: the failure is printed here, or it would be lost.
  console.error(error);
  process.exitCode = 1;
} finally {
  finish();
}
