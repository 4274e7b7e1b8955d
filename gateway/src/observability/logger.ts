import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogFormat } from '../config.js';
import type { LogLevel } from '../../../shared/settings.js';
import { redactValue, scrubText } from './redact.js';

export type { Logger };

export interface LoggerOptions {
  readonly level: LogLevel;
  /** `json`: one JSON object per line (production); `pretty`: a readable line (development). */
  readonly format?: LogFormat;
  /** Where lines go (stdout unless a test or tool says otherwise). */
  readonly destination?: DestinationStream;
}

/** ISO 8601 times, formatted once per millisecond (a busy gateway logs many lines in each). */
let lastMs = 0;
let lastTime = '';
function isoTime(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastTime = `,"time":"${new Date(now).toISOString()}"`;
  }
  return lastTime;
}

/**
 * Stdout, written once per turn of the event loop: the lines of every request that ended in the same
 * turn go out in one system call (a call per line cost a busy gateway a fifth of its throughput), and
 * none waits longer than the turn. Whatever is pending is written at exit.
 */
let stdout: DestinationStream | undefined;
function batchedStdout(): DestinationStream {
  if (stdout) return stdout;
  const out = pino.destination({ dest: 1, sync: true });
  let pending: string[] = [];
  const flush = () => {
    if (pending.length === 0) return;
    const text = pending.join('');
    pending = [];
    out.write(text);
  };
  process.once('exit', flush);
  stdout = {
    write(line: string) {
      if (pending.push(line) === 1) setImmediate(flush);
    },
  };
  return stdout;
}

/** pino-pretty, loaded only for a readable format (production images log JSON). */
function prettyStream(destination: DestinationStream | undefined): DestinationStream {
  const pretty = createRequire(import.meta.url)('pino-pretty') as (options: Record<string, unknown>) => DestinationStream;
  return pretty({
    colorize: destination === undefined && process.stdout.isTTY,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,service',
    singleLine: true,
    ...(destination ? { destination } : {}),
  });
}

/**
 * The gateway's logger: levels as names, ISO times, and redaction that holds whatever is logged —
 * members named like secrets (password, token, secret, authorization, cookie, api key…) at any depth,
 * and secrets visible in text (JWTs, `Bearer …`, JSON members) in messages and error texts.
 */
export function createLogger({ level, format = 'json', destination }: LoggerOptions): Logger {
  const options = {
    level,
    base: { service: 'gateway' },
    timestamp: isoTime,
    formatters: {
      level: (label: string) => ({ level: label }),
      log: (object: Record<string, unknown>) => redactValue(object) as Record<string, unknown>,
    },
    hooks: {
      logMethod(this: Logger, args: unknown[], method: (...rest: unknown[]) => void) {
        method.apply(this, args.map((arg) => (typeof arg === 'string' ? scrubText(arg) : arg)));
      },
    },
  };
  const stream = format === 'pretty' ? prettyStream(destination) : (destination ?? batchedStdout());
  return pino(options, stream);
}

/**
 * Writes `info` lines of `logger` whose fields and message the gateway builds itself from values it
 * made safe (the access line, one per request): the line pino writes — level, time, the logger's
 * bindings, the fields (undefined ones left out), the message — made by one JSON.stringify, skipping
 * pino's per-line work (the redaction pass, hooks, a serialiser looked up for every field).
 */
export function trustedInfoWriter(logger: Logger): (fields: object, message: string) => void {
  const internals = logger as unknown as Record<symbol, unknown>;
  const stream = internals[pino.symbols.streamSym] as DestinationStream;
  const bindings = internals[pino.symbols.chindingsSym] as string;
  return (fields, message) => {
    if (!logger.isLevelEnabled('info')) return;
    const json = JSON.stringify(fields);
    stream.write(`{"level":"info"${isoTime()}${bindings}${json === '{}' ? '' : `,${json.slice(1, -1)}`},"msg":${JSON.stringify(message)}}\n`);
  };
}
