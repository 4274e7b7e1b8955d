import { createHmac } from 'node:crypto';

export interface Playback {
  url: string;
  expiresAt: string;
}

const PLAYBACK_TTL_MS = 60 * 60 * 1000;

/** A CDN URL that only the named user may use, only until it expires (HMAC over path, user and expiry). */
export function signedPlaybackUrl(path: string, userId: string, signingKey: string, nowMs = Date.now()): Playback {
  const expiresMs = nowMs + PLAYBACK_TTL_MS;
  const exp = Math.floor(expiresMs / 1000);
  const signature = createHmac('sha256', signingKey).update(`${path}|${userId}|${exp}`).digest('base64url');
  const query = new URLSearchParams({ uid: userId, exp: String(exp), sig: signature });
  return { url: `https://cdn.tv.example/${path}/master.m3u8?${query.toString()}`, expiresAt: new Date(exp * 1000).toISOString() };
}
