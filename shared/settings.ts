import { z } from 'zod';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/* Reading settings from the environment with zod: the helpers the gateway's configuration and the
   reference services' tracing share. */

/** A configuration problem, worded for one line on stderr: it names the variable, never a secret's value. */
export class ConfigError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ConfigError';
  }
}

const unsetWhenEmpty = (value: unknown) => (value === '' ? undefined : value);

/** A setting read from one variable's text: its value, or its default when the variable is unset or empty. */
export type Setting<T> = z.ZodType<T, unknown>;

/**
 * `value` over the variable's text. Unset or empty, the setting is `fallback` (undefined without one): the
 * default lives in the schema, where the documented configuration table is checked against it.
 */
export function setting<T>(value: z.ZodType<T, string>, fallback?: T): Setting<T | undefined> {
  return z.preprocess(unsetWhenEmpty, fallback === undefined ? value.optional() : value.default(fallback as z.util.NoUndefined<T>));
}

export function text(): Setting<string | undefined>;
export function text(fallback: string): Setting<string>;
export function text(fallback?: string): Setting<string | undefined> {
  return setting(z.string(), fallback);
}

export function integer(name: string, min: number, max: number): Setting<number | undefined>;
export function integer(name: string, min: number, max: number, fallback: number): Setting<number>;
export function integer(name: string, min: number, max: number, fallback?: number): Setting<number | undefined> {
  return setting(
    z
      .string()
      .regex(/^\d+$/, { error: `${name} must be a whole number from ${min} to ${max}` })
      .transform(Number)
      .pipe(z.number().int().min(min, { error: `${name} must be at least ${min}` }).max(max, { error: `${name} must be at most ${max}` })),
    fallback,
  );
}

interface UrlOptions {
  /** Whether the URL may carry a user name and password (`redis://:password@host`). */
  readonly credentials?: 'refused' | 'allowed';
}

/** An absolute URL setting of the given schemes, without query or fragment; credentials only where allowed. */
export function absoluteUrl(name: string, protocols: readonly string[], options?: UrlOptions): Setting<string | undefined>;
export function absoluteUrl(name: string, protocols: readonly string[], options: UrlOptions & { readonly fallback: string }): Setting<string>;
export function absoluteUrl(name: string, protocols: readonly string[], { credentials = 'refused', fallback }: UrlOptions & { readonly fallback?: string } = {}): Setting<string | undefined> {
  const schemes = protocols.map((protocol) => protocol.replace(':', '')).join(' or ');
  return setting(
    z
      .string()
      .refine(
        (value) => {
          try {
            const url = new URL(value);
            const anonymous = url.username === '' && url.password === '';
            return protocols.includes(url.protocol) && url.hostname !== '' && url.search === '' && url.hash === '' && (credentials === 'allowed' || anonymous);
          } catch {
            return false;
          }
        },
        {
          error:
            credentials === 'allowed'
              ? `${name} must be an absolute ${schemes} URL without query or fragment (credentials allowed: ${protocols[0] ?? ''}//:password@host)`
              : `${name} must be an absolute ${schemes} URL without query, fragment or credentials`,
        },
      )
      .transform((value) => value.replace(/\/+$/, '')),
    fallback,
  );
}

export function oneOf<T extends string>(name: string, values: readonly [T, ...T[]]): Setting<T | undefined>;
export function oneOf<T extends string>(name: string, values: readonly [T, ...T[]], fallback: NoInfer<T>): Setting<T>;
export function oneOf<T extends string>(name: string, values: readonly [T, ...T[]], fallback?: T): Setting<T | undefined> {
  return setting(z.enum(values, { error: `${name} must be one of ${values.join(', ')}` }), fallback);
}

/** `true` or `false`, read as a boolean. */
export function flag(name: string, fallback: boolean): Setting<boolean> {
  return z.preprocess(unsetWhenEmpty, z.enum(['true', 'false'], { error: `${name} must be one of true, false` }).transform((value) => value === 'true').default(fallback));
}

/**
 * The environment read through `schema`; the first bad variable becomes a ConfigError naming it, with
 * the value it had unless the variable is one of `secrets`.
 */
export function parsed<T extends z.ZodType>(schema: T, env: NodeJS.ProcessEnv, secrets: ReadonlySet<string> = new Set()): z.infer<T> {
  const result = schema.safeParse(env, { reportInput: true });
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const variable = String(issue?.path[0] ?? '');
  const shown = secrets.has(variable) || typeof env[variable] !== 'string' ? '' : ` (got ${JSON.stringify(env[variable]?.slice(0, 80))})`;
  throw new ConfigError(`${issue?.message ?? 'invalid configuration'}${shown}`);
}
