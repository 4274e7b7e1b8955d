import { pino, type Logger } from 'pino';
import type { LogLevel } from '../../shared/settings.js';

/** A JSON log on stdout (pino), at LOG_LEVEL, its lines shaped like the gateway's: level names, ISO times. */
export const jsonLogger = (service: string, level: LogLevel): Logger =>
  pino({ base: { service }, level, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } });
