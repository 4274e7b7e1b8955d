import { LRUCache } from 'lru-cache';
import { CHANGE_EVENT_TOLERANCE_SECONDS, CHANGE_EVENTS_PATH, MAX_CHANGE_EVENT_BYTES, refuseChangeEvent } from '../../../shared/change-events.js';
import { GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { ANSWERED, rawPathOf, type GatewayPlugin } from '../pipeline/pipeline.js';
import { readBody, type BodyPolicy } from '../request-body.js';
import { upstreamOperations } from '../routing/operations.js';
import { isChange, type Invalidations } from './bus.js';
import { KEY_PREFIX } from './keys.js';
import type { SharedRedis } from './redis.js';

/** Event ids remembered in this process (against replays); Redis remembers them for every replica. */
// Counted as a size, not `max`: lru-cache would allocate its arrays for all of them up front.
const MAX_REMEMBERED_IDS = 100_000;

export interface ChangeEventsOptions {
  /** CHANGE_EVENTS_SECRET. */
  readonly secret: string;
  readonly invalidations: Invalidations;
  readonly redis: SharedRedis | undefined;
  readonly body: BodyPolicy;
  readonly logger: Logger;
}

/**
 * `POST /internal/changes`: a service tells of a change made behind the gateway's back (shared/change-events.ts),
 * signed with CHANGE_EVENTS_SECRET. An event whose signature, time or id is not right changes nothing
 * (401), nor does one seen before (a replay, on any replica with Redis); a signed one that names no
 * unsafe operation of the specs is a 400. An accepted event goes on the invalidation bus as a change
 * through the gateway would: every replica's caches drop that service's answers, and live subscriptions
 * re-read what they follow. On the admin port when there is one (the public port otherwise).
 */
export function changeEventsPlugin(options: ChangeEventsOptions): GatewayPlugin {
  const seen = new LRUCache<string, true>({ maxSize: MAX_REMEMBERED_IDS, sizeCalculation: () => 1, ttl: 2 * CHANGE_EVENT_TOLERANCE_SECONDS * 1000 });
  const policy: BodyPolicy = { ...options.body, limitBytes: MAX_CHANGE_EVENT_BYTES };

  /** Whether `id` is new here and, with Redis, on every replica. */
  async function firstSeen(id: string): Promise<boolean> {
    if (seen.has(id)) return false;
    seen.set(id, true);
    const { redis } = options;
    if (!redis?.up) return true;
    try {
      const set = await redis.answer('change-events', () => redis.commands.set(`${KEY_PREFIX}change-event:${id}`, '1', 'EX', 2 * CHANGE_EVENT_TOLERANCE_SECONDS, 'NX'));
      return set === 'OK';
    } catch {
      // Redis cannot say: this replica's memory has to do.
      return true;
    }
  }

  return {
    name: 'change-events',
    phases: {
      async ownEndpoints(exchange) {
        const { req, res, state } = exchange;
        if (rawPathOf(req) !== CHANGE_EVENTS_PATH) return undefined;
        state.set('route', { face: 'own', path: CHANGE_EVENTS_PATH });
        if (req.method !== 'POST') throw new GatewayError('METHOD_NOT_ALLOWED', `${req.method ?? ''} is not allowed here`, { headers: { allow: 'POST' } });
        const body = (await readBody(req, res, policy)).toString('utf8');
        const refusal = refuseChangeEvent(options.secret, req.headers, body);
        if (refusal !== undefined) throw new GatewayError('UNAUTHENTICATED', `The change event is not accepted: ${refusal}`);
        if (!(await firstSeen(req.headers['webhook-id'] as string))) throw new GatewayError('UNAUTHENTICATED', 'The change event is not accepted: its webhook-id was seen before');
        let change: unknown;
        try {
          change = JSON.parse(body);
        } catch {
          throw new GatewayError('BAD_USER_INPUT', 'The change event is not JSON');
        }
        const operation = isChange(change) ? upstreamOperations().get(change.operationId) : undefined;
        if (!isChange(change) || !operation || operation.method === 'GET') throw new GatewayError('BAD_USER_INPUT', 'The change event must name an operation of the specs that changes something, and its path parameters');
        options.invalidations.publish(operation.upstream, change);
        options.logger.info({ requestId: state.get('requestId'), upstream: operation.upstream, change }, 'change event accepted');
        res.writeHead(204, { 'cache-control': 'no-store' }).end();
        return ANSWERED;
      },
    },
  };
}
