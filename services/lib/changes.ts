import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { request } from 'undici';
import { signChangeEvent } from '../../shared/change-events.js';
import type { ServiceEnvironment } from './environment.js';

const ANNOUNCE_TIMEOUT_MS = 5000;
const RETRY_AFTER_MS = 1000;

/**
 * Tells the gateway of a change this service made (CHANGE_EVENTS_URL, signed with CHANGE_EVENTS_SECRET),
 * whoever asked for it: one made behind the gateway's back reaches its caches and live subscriptions as
 * one through it does. Without the two settings, nothing is sent. Not waited for; tried twice.
 */
export function announceChange(env: ServiceEnvironment, log: Logger, operationId: string, params: Readonly<Record<string, string>>): void {
  const target = env.changeEvents;
  if (!target) return;
  const body = JSON.stringify({ operationId, params });
  const send = async (attempt: number): Promise<void> => {
    try {
      const { statusCode, body: answer } = await request(target.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...signChangeEvent(target.secret, randomUUID(), body) },
        body,
        headersTimeout: ANNOUNCE_TIMEOUT_MS,
        bodyTimeout: ANNOUNCE_TIMEOUT_MS,
      });
      await answer.dump();
      if (statusCode >= 300) log.warn({ operationId, statusCode }, 'the gateway refused a change event');
    } catch (error) {
      if (attempt === 1) {
        await new Promise((resolve) => setTimeout(resolve, RETRY_AFTER_MS));
        return send(2);
      }
      log.warn({ err: error, operationId }, 'a change event could not be sent to the gateway');
    }
  };
  void send(1);
}
