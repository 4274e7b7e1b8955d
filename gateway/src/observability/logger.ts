import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogFormat, LogLevel } from '../config.js';
import { redactValue, scrubText } from './redact.js';

export type { Logger };

export interface LoggerOptions {
  readonly level: LogLevel;
  /** `json`: one JSON object per line (production); `pretty`: a readable line (development). */
  readonly format?: LogFormat;
  /** Where lines go (stdout unless a test or tool says otherwise). */
  readonly destination?: DestinationStream;
}

/** The access line's fields are the gateway's own, built to be safe: they skip the deep redaction. */
const TRUSTED_LINE = Symbol('trusted log line');

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
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: {
      level: (label: string) => ({ level: label }),
      log: (object: Record<string, unknown>) => ((object as Record<symbol, unknown>)[TRUSTED_LINE] === true ? object : (redactValue(object) as Record<string, unknown>)),
    },
    hooks: {
      logMethod(this: Logger, args: unknown[], method: (...rest: unknown[]) => void) {
        method.apply(
          this,
          args.map((arg) => (typeof arg === 'string' ? scrubText(arg) : arg)),
        );
      },
    },
  };
  const stream = format === 'pretty' ? prettyStream(destination) : destination;
  return stream ? pino(options, stream) : pino(options);
}

/** Marks a line whose fields the gateway built itself from safe values (the access line). */
export function trustedLine<T extends object>(fields: T): T {
  return Object.defineProperty(fields, TRUSTED_LINE, { value: true, enumerable: false });
}
