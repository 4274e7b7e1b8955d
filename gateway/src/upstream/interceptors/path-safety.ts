import type { Dispatcher } from 'undici';
import { callOf } from '../call.js';
import { UnsafeTargetError } from '../failures.js';
import { fitsOperation } from '../../routing/operations.js';

/**
 * A call made for an OpenAPI operation (GraphQL) goes only where that operation's path template says:
 * every path parameter exactly one plain segment, the query only the operation's parameters. Anything
 * else fails before a connection is taken. REST targets were normalised and matched against the route
 * table before they got here, by the same segment rules.
 */
export function pathSafetyInterceptor(): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (options, handler) => {
    const { operation, path, query } = callOf(options);
    if (operation && !fitsOperation(operation, path, query)) {
      throw new UnsafeTargetError(`target does not fit ${operation.method} ${operation.template}`);
    }
    return dispatch(options, handler);
  };
}
