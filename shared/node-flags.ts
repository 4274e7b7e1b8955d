/**
 * The Node flags the gateway process runs with, wherever it runs: the image's CMD, `npm run
 * start:gateway`, the launcher (`npm start`, `npm run start:cluster`), the benchmarks and the tests'
 * gateway processes (test/unit/deployment.test.ts checks the image and the script say the same).
 *
 * `--max-old-space-size=256`: V8 sizes its heap from the machine's memory. On a host with gigabytes it
 * lets the old generation grow to four times what is alive before a full collection (its largest growing
 * factor), and when the load stops nothing collects that garbage until its memory reducer happens to run
 * (20 s to never): the gateway kept 235–285 MB resident after load for ~45 MB of live heap. Under 2 GB the
 * factor shrinks with the limit, to 1.3 at 256 MB: the old generation stays within a third of what is
 * alive, under load and after it. 256 MB is also the limit Node itself picks inside the gateway's
 * container (384 MiB: a quarter of the memory, twice for 64-bit pointers), so the heap behaves the same on
 * a developer's machine, in the benchmarks and in production. Measured: docs/operations.md#memory.
 */
export const GATEWAY_NODE_FLAGS: readonly string[] = ['--max-old-space-size=256'];
