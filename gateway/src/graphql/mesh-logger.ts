import type { Logger as MeshLogger } from '@graphql-mesh/types';
import type { Logger } from '../observability/logger.js';

/**
 * Mesh takes its logger as a module named in .meshrc.yaml (`logger:`), not as an object: this module
 * is that logger, and sends Mesh's lines into the gateway's structured log once the gateway says where.
 * Mesh's chatty start-up lines are debug; warnings and errors keep their level.
 */
let target: Logger | undefined;

export function routeMeshLogsTo(logger: Logger): void {
  target = logger.child({ component: 'mesh' });
}

const text = (args: unknown[]) => args.map((arg) => (arg instanceof Error ? arg.message : typeof arg === 'string' ? arg : JSON.stringify(arg))).join(' ');

function meshLogger(name: string): MeshLogger {
  return {
    name,
    log: (...args: unknown[]) => target?.debug({ source: name }, text(args)),
    debug: (...args: unknown[]) => target?.debug({ source: name }, text(args)),
    info: (...args: unknown[]) => target?.debug({ source: name }, text(args)),
    warn: (...args: unknown[]) => (target ? target.warn({ source: name }, text(args)) : console.warn(name, text(args))),
    error: (...args: unknown[]) => (target ? target.error({ source: name }, text(args)) : console.error(name, text(args))),
    child: (prefix: string | Record<string, string | number>) => meshLogger(typeof prefix === 'string' ? `${name}:${prefix}` : `${name}:${Object.values(prefix).join(':')}`),
  } as MeshLogger;
}

export default meshLogger('mesh');
