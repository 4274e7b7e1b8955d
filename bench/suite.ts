/**
 * `npm run bench`: the gateway measured side by side with the peers a team would pick instead, rounds
 * alternating in one run; every round is written to bench/RESULTS.md with the machine and its load.
 * Usage: npm run bench [-- --seconds 5 --rounds 3]
 */
import { writeFileSync } from 'node:fs';
import { ensurePeers, finish, machine, stopAfter, table } from './lib.js';
import { restSection, type Section } from './rest.js';

const argument = (name: string, fallback: number) => {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? fallback : Number(process.argv[index + 1]);
};
const seconds = argument('seconds', 5);
const rounds = argument('rounds', 3);
stopAfter((seconds * 10 * rounds + 300) * 1000);

ensurePeers();
const before = machine();
const started = new Date();
try {
  const sections: Section[] = [await restSection(seconds, rounds)];
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
} finally {
  finish();
}
