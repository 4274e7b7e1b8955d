import type { IncomingHttpHeaders } from 'node:http';
import type { EntitlementBatch } from '../../shared/records.js';
import type { ContentId } from '../../shared/upstreams.js';
import { callService } from './client.js';
import type { ServiceEnvironment } from './environment.js';
import { HttpError } from './errors.js';
import { identityHeaders } from './identity.js';

/** Asks the rights service whether the caller may play `contentId`; 403 when not, 503 when it cannot tell. */
export async function requireEntitlement(env: ServiceEnvironment, headers: IncomingHttpHeaders, contentId: ContentId, what: string): Promise<void> {
  const answer = await callService<EntitlementBatch>(env, 'rights', `/subscriptions/entitlements?contentIds=${encodeURIComponent(contentId)}`, { headers: identityHeaders(headers) });
  if (!answer.items[0]?.canPlay) throw new HttpError(403, `Not entitled to play this ${what}`);
}
