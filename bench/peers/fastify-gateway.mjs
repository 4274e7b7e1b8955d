// The REST peer: the gateway a team would write in twenty lines with Fastify, @fastify/http-proxy and
// jose. It verifies the bearer token on every request and sets the identity headers, as ours does.
// Usage: node fastify-gateway.mjs <port> <upstream URL> <HS256 secret>
import proxy from '@fastify/http-proxy';
import Fastify from 'fastify';
import { jwtVerify } from 'jose';

const [port, upstream, secret] = process.argv.slice(2);
const key = Buffer.from(secret);
const app = Fastify({ logger: false });

app.get('/health', async () => ({ status: 'ok' }));
app.register(async (scope) => {
  scope.addHook('onRequest', async (request, reply) => {
    const [scheme, token] = (request.headers.authorization ?? '').split(' ');
    try {
      if (scheme !== 'Bearer' || !token) throw new Error('no token');
      const { payload } = await jwtVerify(token, key, { algorithms: ['HS256'] });
      request.identity = { sub: String(payload.sub), roles: Array.isArray(payload.roles) ? payload.roles.join(',') : '' };
    } catch {
      reply.code(401).send({ detail: 'Not authenticated' });
    }
  });
  await scope.register(proxy, {
    upstream,
    prefix: '/ondemand',
    rewritePrefix: '/ondemand',
    replyOptions: {
      rewriteRequestHeaders: (request, headers) => ({ ...headers, 'x-user-id': request.identity.sub, 'x-user-roles': request.identity.roles }),
    },
  });
});
await app.listen({ port: Number(port), host: '127.0.0.1' });
