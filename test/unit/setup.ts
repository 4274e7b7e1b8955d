/**
 * The unit tier's promise, kept at run time (vitest.config.ts runs this before every file of test/unit):
 * nothing it runs opens a socket — connects or listens — or starts a process, whether a test, a helper or
 * a library does it. Each attempt throws where it is made, and is kept, so that a test whose code
 * swallowed the error (a client that turns it into an answer, say) still fails. The unit tier runs in
 * workers of its own (a vitest project), so nothing here is ever undone.
 */
import childProcess, { ChildProcess } from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';
import { Server, Socket } from 'node:net';
import { afterAll, afterEach, expect } from 'vitest';

export class OutOfTierError extends Error {
  override readonly name = 'OutOfTierError';
}

/** The attempts since the last check, on the global object: this module is evaluated again for every file. */
const TAKEN = Symbol.for('test/unit: refused attempts');
const globals = globalThis as { [TAKEN]?: string[] };
const refused = (globals[TAKEN] ??= []);

/** The attempts refused so far, forgotten: for the test that makes some on purpose. */
export function takeRefused(): string[] {
  return refused.splice(0);
}

function refuse(what: string): never {
  const error = new OutOfTierError(`test/unit opens no socket and starts no process, but this ${what}: move the test to test/http`);
  refused.push(`${what}\n${error.stack ?? ''}`);
  throw error;
}

// Every TCP, TLS and IPC client connects through Socket#connect (net.connect, http, undici, fetch,
// ioredis); every server listens through Server#listen (http and https servers are net servers).
Socket.prototype.connect = function connect() {
  return refuse('opens a connection');
};
Server.prototype.listen = function listen() {
  return refuse('listens on a port');
};
// Every asynchronous child (spawn, exec, execFile, fork) is spawned through ChildProcess#spawn; the
// synchronous ones through spawnSync, which the module's own execSync and execFileSync call directly.
// (Node's own method, absent from its type declarations.)
(ChildProcess.prototype as unknown as { spawn: () => never }).spawn = () => refuse('starts a process');
for (const name of ['spawnSync', 'execSync', 'execFileSync'] as const) {
  childProcess[name] = () => refuse('starts a process');
}
// ES modules that imported these by name see the replacements too.
syncBuiltinESMExports();

const nothingRefused = () => expect(takeRefused(), 'sockets opened or processes started in the unit tier').toEqual([]);
// A test that already failed (at the refusal itself, most often) is not failed twice.
afterEach(({ task }) => (task.result?.state === 'fail' ? void takeRefused() : nothingRefused()));
afterAll(nothingRefused);
