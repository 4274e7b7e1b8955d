import { createHmac } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Playback } from '../../shared/records.js';
import { contentId, type ContentKind } from '../../shared/upstreams.js';
import { requireEntitlement } from './entitlement.js';
import type { ServiceEnvironment } from './environment.js';
import { requireCaller } from './identity.js';

const PLAYBACK_TTL_MS = 60 * 60 * 1000;
/** Where each kind of content is on the CDN. */
const CDN_PATHS: Readonly<Record<ContentKind, string>> = { movie: 'vod', channel: 'live' };

/** A CDN URL that only the named user may use, only until it expires (HMAC over path, user and expiry). */
export function signedPlaybackUrl(path: string, userId: string, signingKey: string, nowMs = Date.now()): Playback {
  const expiresMs = nowMs + PLAYBACK_TTL_MS;
  const exp = Math.floor(expiresMs / 1000);
  const signature = createHmac('sha256', signingKey).update(`${path}|${userId}|${exp}`).digest('base64url');
  const query = new URLSearchParams({ uid: userId, exp: String(exp), sig: signature });
  return { url: `https://cdn.tv.example/${path}/master.m3u8?${query.toString()}`, expiresAt: new Date(exp * 1000).toISOString() };
}

/**
 * Where the caller may play a movie or a channel: 401 without a caller, then 404 from `find` when there
 * is no such content, then 403 unless rights management says the caller is entitled.
 */
export async function playbackFor(env: ServiceEnvironment, headers: IncomingHttpHeaders, kind: ContentKind, find: () => Promise<{ readonly id: string }>): Promise<Playback> {
  const caller = requireCaller(headers);
  const { id } = await find();
  await requireEntitlement(env, headers, contentId(kind, id), kind);
  return signedPlaybackUrl(`${CDN_PATHS[kind]}/${id}`, caller.id, env.playbackSigningKey);
}
