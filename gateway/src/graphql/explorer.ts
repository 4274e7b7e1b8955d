import { gzipSync } from 'node:zlib';
import { appendVary } from '../cors.js';
import type { Exchange } from '../pipeline/pipeline.js';

/** What the explorer opens with: the demo logins, what a TV app's home screen asks for, and its live guide. */
const EXAMPLE_OPERATIONS = `# The TV streaming gateway. Demo logins (development data):
#   alice / alice-password   premium: every movie and channel
#   bob / bob-password       no subscription: free content only
#   admin / admin-password   admin
#
# Run Login (the ▶ button, then "Login"), copy its access_token, and add under Headers:
#   { "Authorization": "Bearer <access_token>" }
# Then a movie's entitlement says what that user may play.

mutation Login {
  login(username: "alice", password: "alice-password") {
    access_token
    expires_in
  }
}

query HomeScreen {
  plans { id name }
  movies(limit: 5) {
    total
    items { id title year free }
  }
  channels { number name nowPlaying { title end } }
}

# A subscription: each channel's programme now, then the next as it starts. The response pane
# shows the latest result; the run button, now "Stop", ends it.
subscription OnAir {
  nowPlaying(channelIds: ["c1", "c2"]) {
    channel { name }
    program { title end }
  }
}
`;

interface Page {
  readonly html: Buffer;
  readonly gzipped: Buffer;
}

async function renderPage(): Promise<Page> {
  // Loaded on the first visit only: GraphiQL and its editor are 9 MB of JavaScript, inlined in the page.
  const { renderGraphiQL } = await import('@graphql-yoga/render-graphiql');
  const html = Buffer.from(
    renderGraphiQL({
      title: 'TV gateway · GraphiQL',
      endpoint: '/graphql',
      // GraphQL over SSE on /graphql itself (render-graphiql makes it the subscriptions endpoint): a GET with
      // Accept: text/event-stream, the graphql-sse protocol's distinct connections mode, with the headers
      // editor's Authorization. Not 'WS': GraphiQL sends no headers editor over a WebSocket.
      subscriptionsProtocol: 'GRAPHQL_SSE',
      defaultQuery: EXAMPLE_OPERATIONS,
      defaultHeaders: '{}',
      shouldPersistHeaders: false,
    }),
  );
  return { html, gzipped: gzipSync(html) };
}

/** A browser asking for /graphql as a page: not a GraphQL request (no `query` parameter), nor Sandbox. */
export function wantsExplorer({ req }: Exchange): boolean {
  if (req.method !== 'GET' || !/\btext\/html\b/.test(String(req.headers.accept ?? ''))) return false;
  const search = new URLSearchParams((req.url ?? '').split('?')[1] ?? '');
  return !search.has('query') && !search.has('sandbox');
}

/**
 * The GraphQL explorer of development: GraphiQL with every asset served by the gateway itself (nothing
 * from a CDN, so it works offline), opened on the demo logins, a home-screen query and a subscription. Apollo Sandbox,
 * which loads from Apollo's CDN, stays at /graphql?sandbox for those online.
 */
export function createExplorer(): (exchange: Exchange) => Promise<void> {
  let page: Promise<Page> | undefined;
  return async ({ req, res }) => {
    page ??= renderPage();
    const { html, gzipped } = await page;
    const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    const body = gzip ? gzipped : html;
    appendVary(res, 'Accept, Accept-Encoding');
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'content-length': body.length,
      'cache-control': 'no-cache',
      ...(gzip ? { 'content-encoding': 'gzip' } : {}),
    });
    res.end(body);
  };
}
