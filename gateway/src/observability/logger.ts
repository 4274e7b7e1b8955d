import { pino, type Logger } from 'pino';
import type { LogLevel } from '../config.js';

export type { Logger };

/** Structured JSON logs on stdout; secrets in headers are never written. */
export function createLogger(level: LogLevel): Logger {
  return pino({
    level,
    base: { service: 'gateway' },
    redact: { paths: ['req.headers.authorization', 'req.headers.cookie', '*.authorization'], censor: '[redacted]' },
  });
}
