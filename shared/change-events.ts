import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Change events a service sends the gateway about changes made behind its back (an admin tool, a
 * schedule import): `{ "operationId": "adminUpdateChannel", "params": { "id": "c1" } }` — the spec
 * operation whose effect it had, as if the call had come through the gateway. Signed as Standard
 * Webhooks (standardwebhooks.com) are: HMAC-SHA256 over `id.timestamp.body` with the shared secret
 * (CHANGE_EVENTS_SECRET), in `webhook-id`, `webhook-timestamp` (seconds) and `webhook-signature`
 * (`v1,<base64>`). node:crypto computes it; the scheme's own package brings a JavaScript SHA-256.
 */
export const CHANGE_EVENTS_PATH = '/internal/changes';

/** A signature is accepted this long either side of the receiver's clock; an id is remembered as long. */
export const CHANGE_EVENT_TOLERANCE_SECONDS = 300;

/** The largest event body: a change is a name and a few parameters. */
export const MAX_CHANGE_EVENT_BYTES = 4096;

export interface SignedHeaders {
  readonly 'webhook-id': string;
  readonly 'webhook-timestamp': string;
  readonly 'webhook-signature': string;
}

function signature(secret: string, id: string, timestamp: string, body: string): Buffer {
  return createHmac('sha256', secret).update(`${id}.${timestamp}.${body}`).digest();
}

export function signChangeEvent(secret: string, id: string, body: string, nowSeconds = Math.floor(Date.now() / 1000)): SignedHeaders {
  const timestamp = String(nowSeconds);
  return { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': `v1,${signature(secret, id, timestamp, body).toString('base64')}` };
}

/** Why a signed event is not accepted, or undefined when it is (its id is the caller's to check for replays). */
export function refuseChangeEvent(secret: string, headers: Readonly<Record<string, string | string[] | undefined>>, body: string, nowSeconds = Math.floor(Date.now() / 1000)): string | undefined {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  const signatures = headers['webhook-signature'];
  if (typeof id !== 'string' || !/^[A-Za-z0-9_.:-]{1,128}$/.test(id)) return 'webhook-id is missing or not an id';
  if (typeof timestamp !== 'string' || !/^\d{1,12}$/.test(timestamp)) return 'webhook-timestamp is missing or not a number of seconds';
  if (Math.abs(nowSeconds - Number(timestamp)) > CHANGE_EVENT_TOLERANCE_SECONDS) return 'webhook-timestamp is too far from now';
  if (typeof signatures !== 'string' || signatures.length > 1024) return 'webhook-signature is missing';
  const expected = signature(secret, id, timestamp, body);
  // Several signatures may be sent (a secret being rotated): one that matches is enough.
  const matches = signatures.split(' ').some((entry) => {
    const [version, value] = entry.split(',', 2);
    if (version !== 'v1' || value === undefined) return false;
    const given = Buffer.from(value, 'base64');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  return matches ? undefined : 'webhook-signature does not match';
}
