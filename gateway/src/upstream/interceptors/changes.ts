import type { Dispatcher } from 'undici';
import type { Change, Invalidations } from '../../cluster/index.js';
import { pathParamsOf } from '../../routing/operations.js';
import type { UpstreamName } from '../../../../shared/upstreams.js';
import { operationOf, type DispatchWithCall } from '../call.js';
import { PassThroughHandler, type Controller, type Headers } from './handler.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

/**
 * Tells of a change once: after an unsafe call that may have changed something — one that succeeded
 * (below 400), and one whose outcome is unknown: a 5xx, or no answer at all (a reset, a timeout), since
 * the upstream may have made the change before it failed. Only a 4xx says that nothing changed.
 */
class ChangeHandler extends PassThroughHandler {
  private told = false;

  constructor(
    next: Dispatcher.DispatchHandler,
    private readonly tell: () => void,
  ) {
    super(next);
  }

  private once(): void {
    if (this.told) return;
    this.told = true;
    this.tell();
  }

  override onResponseStart(controller: Controller, statusCode: number, headers: Headers, statusMessage?: string): void {
    if (statusCode < 400 || statusCode >= 500) this.once();
    super.onResponseStart(controller, statusCode, headers, statusMessage);
  }

  override onResponseError(controller: Controller, error: Error): void {
    this.once();
    super.onResponseError(controller, error);
  }
}

/** What a call changed, when it reaches a spec operation: its operationId and path parameters. */
function changeOf({ call }: DispatchWithCall): Change | undefined {
  const operation = operationOf(call);
  const params = operation ? pathParamsOf(operation, call.path) : undefined;
  return operation && params ? { operationId: operation.operationId, params } : undefined;
}

/**
 * Every change through the gateway, on the invalidation bus: every replica's caches drop `upstream`'s
 * answers (a catalogue edit shows on every page, not only at the URI it changed — RFC 9111 4.4 asks for
 * the URI, at least), and whoever follows a resource (live subscriptions) hears what changed. With the
 * caches off too: the bus is how live updates travel.
 */
export function changesInterceptor(upstream: UpstreamName, invalidations: Invalidations): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (options, handler) => {
    if (SAFE_METHODS.has(options.method)) return dispatch(options, handler);
    const change = changeOf(options as DispatchWithCall);
    return dispatch(options, new ChangeHandler(handler, () => invalidations.publish(upstream, change)));
  };
}
