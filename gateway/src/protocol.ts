import { GatewayError } from './errors.js';
import type { GatewayPlugin } from './pipeline/pipeline.js';

/** The longest request target accepted (path and query); longer is 414 (RFC 9112 3). */
const MAX_TARGET_LENGTH = 8192;

function hostHeaders(rawHeaders: readonly string[]): number {
  let count = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] ?? '';
    // Most names are not four letters long: no lower-case copy made of them.
    if (name.length === 4 && name.toLowerCase() === 'host') count++;
  }
  return count;
}

/** HTTP/1.1 rules Node's parser lets through: one Host header (RFC 9112 3.2), a bounded target. */
export function protocolPlugin(): GatewayPlugin {
  return {
    name: 'protocol',
    phases: {
      onRequest({ req }) {
        if ((req.url ?? '').length > MAX_TARGET_LENGTH) throw new GatewayError('URI_TOO_LONG', `The request target is over ${MAX_TARGET_LENGTH} characters`);
        if (hostHeaders(req.rawHeaders) > 1) throw new GatewayError('BAD_USER_INPUT', 'The request has more than one Host header');
        return undefined;
      },
    },
  };
}
