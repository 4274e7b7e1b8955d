/**
 * `npm run bench`: the gateway measured side by side with the peers a team would pick instead, rounds
 * alternating in one run; every round is written to bench/RESULTS.md with the machine and its load.
 * Usage: npm run bench [-- --seconds 4 --rounds 3 --only rest|graphql|cluster|subscriptions]
 * A full run writes the file anew; with --only, the one section is replaced in it (each section follows
 * a marker line), the others kept as they were, and the section says when it ran alone.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { ensurePeers, finish, machine, stopAfter, table } from './lib.js';
import { clusterSection } from './cluster.js';
import { graphqlSection } from './graphql-http.js';
import { pacedSeconds, restSection, type Section } from './rest.js';
import { subscriptionsSection } from './subscriptions.js';

const argument = (name: string, fallback: number) => {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? fallback : Number(process.argv[index + 1]);
};
const seconds = argument('seconds', 4);
const rounds = argument('rounds', 3);
// About 50 cases each round, at full load and at a fixed rate; then start-ups, rests and the
// subscriptions section (about a minute and a half whatever the seconds and rounds), generously.
stopAfter((rounds * (seconds + pacedSeconds(seconds)) * 50 + 900) * 1000);

/** The sections in their order; `peers` when they measure bench/peers too (installed first, once). */
const SECTIONS: readonly { readonly name: string; readonly run: () => Promise<Section>; readonly peers?: boolean }[] = [
  { name: 'rest', run: () => restSection(seconds, rounds), peers: true },
  { name: 'graphql', run: () => graphqlSection(seconds, rounds), peers: true },
  { name: 'cluster', run: () => clusterSection(seconds, rounds) },
  { name: 'subscriptions', run: () => subscriptionsSection() },
];
const RESULTS = new URL('./RESULTS.md', import.meta.url);
/** The line each section of RESULTS.md starts with: what --only replaces. */
const marker = (name: string) => `<!-- section: ${name} -->`;

/** RESULTS.md as its header and its sections by name (a file without markers is all header: kept whole). */
function readResults(): { header: string; sections: Map<string, string> } {
  const text = existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : '';
  const [header = '', ...parts] = text.split(/^<!-- section: (\S+) -->\n/m);
  const sections = new Map<string, string>();
  for (let i = 0; i + 1 < parts.length; i += 2) sections.set(parts[i] as string, parts[i + 1] as string);
  return { header, sections };
}

const render = (section: Section, note?: string) =>
  [
    `## ${section.title}`,
    '',
    ...(note ? [note, ''] : []),
    ...section.summary.map((line) => `- ${line}`),
    '',
    section.table ?? table(section.rounds),
    ...(section.paced ? ['', '### The same cases at a fixed request rate', '', table(section.paced)] : []),
  ].join('\n');

const before = machine();
const started = new Date();
try {
  const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
  const chosen = SECTIONS.filter((section) => only === undefined || section.name === only);
  if (chosen.length === 0) throw new Error(`--only: no section ${only ?? ''} (${SECTIONS.map((section) => section.name).join(', ')})`);
  if (chosen.some((section) => section.peers)) ensurePeers();
  const ran = new Map<string, Section>();
  for (const section of chosen) {
    try {
      ran.set(section.name, await section.run());
    } catch (error) {
      // The sections that ran are still written: a late failure must not throw a quarter of an hour of rounds away.
      console.error(error);
      process.exitCode = 1;
      ran.set(section.name, { title: `${section.name}: failed`, rounds: [], summary: [`the section failed: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`], table: '' });
    }
  }
  let header: string;
  let sections: Map<string, string>;
  if (only === undefined) {
    header = [
      '# Benchmark results',
      '',
      `Written by \`npm run bench\` on ${started.toISOString()} in ${Math.round((Date.now() - started.getTime()) / 60_000)} minutes: ${rounds} alternating rounds of ${seconds} s per case at full load (autocannon, 32 connections, loopback), then ${rounds} of ${pacedSeconds(seconds)} s per case at a fixed rate (fewer seconds, to keep the whole run near 20 minutes: each p99 is the median of the rounds'; an even open-loop pace over up to 32 connections, latency counted from when each request was due). "1,000 users": each request's token drawn at random from 1,000 users signed with the bench secret; "1 user": one token for all; "anonymous": none.`,
      '',
      `- machine before: ${before}`,
      `- machine after: ${machine()}`,
      '',
      '',
    ].join('\n');
    sections = new Map([...ran].map(([name, section]) => [name, render(section)]));
  } else {
    ({ header, sections } = readResults());
    if (header.trim() === '') header = '# Benchmark results\n';
    const note = `Run alone (\`npm run bench -- --only ${only}\`) on ${started.toISOString()}; machine before: ${before}; after: ${machine()}.`;
    sections.set(only, render(ran.get(only) as Section, note));
  }
  // In the suite's order; a section the suite no longer has is kept, at the end.
  const names = [...SECTIONS.map((section) => section.name).filter((name) => sections.has(name)), ...[...sections.keys()].filter((name) => !SECTIONS.some((section) => section.name === name))];
  const text = [header.replace(/\n*$/, '\n\n'), ...names.map((name) => `${marker(name)}\n${(sections.get(name) ?? '').replace(/\n*$/, '\n\n')}`)].join('').replace(/\n+$/, '\n');
  writeFileSync(RESULTS, text);
  console.log(text);
} catch (error) {
  // finish() exits: the failure is printed here, or it would be lost.
  console.error(error);
  process.exitCode = 1;
} finally {
  finish();
}
