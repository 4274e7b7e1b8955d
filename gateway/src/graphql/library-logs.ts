import type { Logger as MeshLogger } from '@graphql-mesh/types';
import type { Logger } from '../observability/logger.js';
import { redactedText } from '../observability/redact.js';

/**
 * Mesh's and Apollo's own log lines, in the gateway's log. Their arguments are whatever the library
 * chose to log (request bodies with passwords, headers with tokens): they are serialised through the
 * gateway's redaction, and not at all when the level is off (Mesh logs every resolver call at debug).
 * Mesh's chatty lines are debug; warnings and errors keep their level.
 */
let target: Logger | undefined;

/** Mesh takes its logger as a module named in .meshrc.yaml (`logger:`): this module's default export. */
export function routeMeshLogsTo(logger: Logger): void {
  target = logger.child({ component: 'mesh' });
}

/** Mesh passes functions for arguments that are costly to build: they are called only when logged. */
const argumentsOf = (args: unknown[]) => args.map((arg) => (typeof arg === 'function' ? (arg as () => unknown)() : arg));

function meshLogger(name: string): MeshLogger {
  const at = (level: 'debug' | 'warn' | 'error') => (...args: unknown[]) => {
    if (!target) {
      if (level !== 'debug') console[level](name, redactedText(argumentsOf(args)));
      return;
    }
    if (target.isLevelEnabled(level)) target[level]({ source: name }, redactedText(argumentsOf(args)));
  };
  return {
    name,
    log: at('debug'),
    debug: at('debug'),
    info: at('debug'),
    warn: at('warn'),
    error: at('error'),
    child: (prefix: string | Record<string, string | number>) => meshLogger(typeof prefix === 'string' ? `${name}:${prefix}` : `${name}:${Object.values(prefix).join(':')}`),
  } as MeshLogger;
}

export default meshLogger('mesh');

/** The shape of Apollo Server's `logger` option. */
interface ApolloLogger {
  debug(message?: unknown): void;
  info(message?: unknown): void;
  warn(message?: unknown): void;
  error(message?: unknown): void;
}

/** Apollo Server's logger: its info lines are debug here. */
export function apolloLogger(logger: Logger): ApolloLogger {
  const apollo = logger.child({ component: 'apollo' });
  const at = (level: 'debug' | 'warn' | 'error') => (...args: unknown[]) => {
    if (apollo.isLevelEnabled(level)) apollo[level](redactedText(args));
  };
  return { debug: at('debug'), info: at('debug'), warn: at('warn'), error: at('error') };
}
