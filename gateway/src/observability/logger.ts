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

/** A logger whose lines the gateway builds itself from safe values (the access log): no redaction pass. */
const TRUSTED_LOGGER = Symbol('trusted logger');

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
        if ((this as unknown as Record<symbol, unknown>)[TRUSTED_LOGGER] === true) method.apply(this, args);
        else method.apply(this, args.map((arg) => (typeof arg === 'string' ? scrubText(arg) : arg)));
      },
    },
  };
  const stream = format === 'pretty' ? prettyStream(destination) : (destination ?? batchedStdout());
  return pino(options, stream);
}

/**
 * A child of `logger` for lines whose fields the gateway builds itself from values it made safe (the
 * access line): they skip the redaction pass, which a line per request would pay for every time.
 */
export function trustedChild(logger: Logger): Logger {
  const child = logger.child({}, { formatters: { log: (object: object) => object } });
  return Object.defineProperty(child, TRUSTED_LOGGER, { value: true });
}
