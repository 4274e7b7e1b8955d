/** What a secret is replaced with in a log line. */
export const REDACTED = '[redacted]';

/**
 * Field names whose values are never logged, wherever they appear: credentials (`password`,
 * `accessToken`, `refresh_token`, `client_secret`…) and the headers that carry them.
 */
const SECRET_KEY = /pass(word|wd|phrase)?$|token|secret|authorization|cookie|api[-_]?key|credential|signature/i;

/**
 * Secrets inside text (a library that stringified its arguments itself): a JSON member named like a
 * secret, a `Bearer`/`Basic` credential, anything shaped like a JWT.
 */
const SECRET_MEMBER = /("[^"\\]*(?:pass(?:word|wd|phrase)?|token|secret|authorization|cookie|api[-_]?key|credential|signature)[^"\\]*"\s*:\s*)"(?:[^"\\]|\\.)*"/gi;
const ESCAPED_SECRET_MEMBER = /(\\"[^"\\]*(?:pass(?:word|wd|phrase)?|token|secret|authorization|cookie|api[-_]?key|credential|signature)[^"\\]*\\"\s*:\s*)\\"(?:[^"\\]|\\[^"])*\\"/gi;
const CREDENTIAL = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi;
const JWT_SHAPED = /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;
/** A cheap first look: most text has none of these, and is returned as it is. */
const MAYBE_SECRET = /pass|token|secret|authoriz|cookie|api.?key|credential|signature|bearer|basic|eyJ/i;

/** `text` with every secret it visibly holds replaced. */
export function scrubText(text: string): string {
  if (!MAYBE_SECRET.test(text)) return text;
  return text
    .replace(SECRET_MEMBER, `$1"${REDACTED}"`)
    .replace(ESCAPED_SECRET_MEMBER, `$1\\"${REDACTED}\\"`)
    .replace(CREDENTIAL, `$1 ${REDACTED}`)
    .replace(JWT_SHAPED, REDACTED);
}

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

const MAX_DEPTH = 8;
const MAX_ITEMS = 100;

/**
 * A copy of `value` safe to log: members named like secrets replaced, text scrubbed, errors as their
 * name, message, code, stack and cause, functions and symbols dropped; depth and list length are capped and
 * cycles cut, so a library's arbitrary argument can be logged.
 */
export function redactValue(value: unknown, depth = 0, seen: WeakSet<object> = new WeakSet()): unknown {
  if (typeof value === 'string') return scrubText(value);
  if (value === null || typeof value !== 'object') return typeof value === 'function' || typeof value === 'symbol' ? undefined : value;
  if (seen.has(value)) return '[circular]';
  if (depth >= MAX_DEPTH) return '[too deep]';
  seen.add(value);
  if (value instanceof Error) {
    const { code, cause } = value as { code?: unknown; cause?: unknown };
    return {
      type: value.name,
      message: scrubText(value.message),
      ...(typeof code === 'string' ? { code } : {}),
      ...(value.stack ? { stack: scrubText(value.stack) } : {}),
      ...(cause !== undefined ? { cause: redactValue(cause, depth + 1, seen) } : {}),
    };
  }
  if (Array.isArray(value)) return value.slice(0, MAX_ITEMS).map((item) => redactValue(item, depth + 1, seen));
  if (value instanceof Headers || value instanceof Map) return redactValue(Object.fromEntries(value.entries()), depth, seen);
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return `[${value.byteLength} bytes]`;
  const copy: Record<string, unknown> = {};
  for (const [key, member] of Object.entries(value)) copy[key] = isSecretKey(key) ? REDACTED : redactValue(member, depth + 1, seen);
  return copy;
}

/** A library's log arguments as one line of text, redacted. Strings stay as they are (scrubbed). */
export function redactedText(args: readonly unknown[]): string {
  return args
    .map((arg) => {
      const safe = redactValue(arg);
      return typeof safe === 'string' ? safe : JSON.stringify(safe);
    })
    .join(' ');
}
