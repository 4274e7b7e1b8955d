import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTvClient, GatewayGraphQLError, gatewayUrl } from '../../examples/tv-app/client.js';
import { HomeScreen } from '../../examples/tv-app/operations.js';

describe('the typed client example', () => {
  it('finds the gateway by the gateway’s own convention: GATEWAY_URL, else HOST and PORT', () => {
    expect(gatewayUrl({})).toBe('http://127.0.0.1:4000');
    expect(gatewayUrl({ PORT: '8080' })).toBe('http://127.0.0.1:8080');
    expect(gatewayUrl({ HOST: '0.0.0.0', PORT: '8080' })).toBe('http://127.0.0.1:8080');
    expect(gatewayUrl({ HOST: 'gateway.internal', PORT: '4000' })).toBe('http://gateway.internal:4000');
    expect(gatewayUrl({ GATEWAY_URL: 'https://tv-api.example.com/', PORT: '8080' })).toBe('https://tv-api.example.com');
  });

  describe('against answers that are not data', () => {
    let server: Server;
    let answer: (res: ServerResponse) => void;
    let url: string;
    beforeAll(async () => {
      server = createServer((req, res) => {
        req.resume();
        req.on('end', () => answer(res));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(() => new Promise((resolve) => server.close(resolve)));

    const failure = async () => (await createTvClient(url)(HomeScreen, { limit: 1 }).catch((error: unknown) => error)) as GatewayGraphQLError;

    it('surfaces a GraphQL-shaped 429 with its code, request id and Retry-After', async () => {
      answer = (res) =>
        res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '7' }).end('{"errors":[{"message":"Too many requests: try again in 7 s","extensions":{"code":"RATE_LIMITED","requestId":"r-1"}}]}');
      const error = await failure();
      expect(error).toBeInstanceOf(GatewayGraphQLError);
      expect([error.code, error.requestId, error.status, error.retryAfterSeconds, error.message]).toEqual(['RATE_LIMITED', 'r-1', 429, 7, 'RATE_LIMITED: Too many requests: try again in 7 s']);
    });

    it('surfaces a problem+json answer (a proxy in front, say) with its code instead of an empty error', async () => {
      answer = (res) =>
        res.writeHead(503, { 'content-type': 'application/problem+json', 'retry-after': '2' }).end('{"type":"about:blank","title":"Service Unavailable","status":503,"code":"UPSTREAM_UNAVAILABLE","detail":"The service is unavailable","requestId":"r-2"}');
      const error = await failure();
      expect([error.code, error.requestId, error.status, error.retryAfterSeconds, error.message]).toEqual(['UPSTREAM_UNAVAILABLE', 'r-2', 503, 2, 'UPSTREAM_UNAVAILABLE: The service is unavailable']);
    });

    it('names the HTTP status of anything else (an HTML error page)', async () => {
      answer = (res) => res.writeHead(502, { 'content-type': 'text/html' }).end('<h1>Bad Gateway</h1>');
      const error = await failure();
      expect([error.code, error.status, error.retryAfterSeconds]).toEqual(['HTTP_502', 502, undefined]);
    });
  });
});
