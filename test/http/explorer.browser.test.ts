/**
 * The development explorer in a real browser: Debian's Chromium (`apt-get install chromium`; .ci/run
 * installs it) driven by playwright-core through its executable, no browser download. Every request to
 * anything but the gateway is blocked: the explorer must work offline.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useStack } from '../helpers/stack.js';
import { login } from '../helpers/login.js';
import { sample } from '../helpers/metrics.js';
import { eventually, WAIT_MS } from '../helpers/wait.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

describe('the GraphQL explorer and the REST docs, offline, in headless Chromium', () => {
  // Programmes 2 s long: a subscription sees the next one soon.
  const fx = useStack({ upstreams: 'reference', env: { NODE_ENV: 'development', RATE_LIMIT_PER_MINUTE: '0' }, serviceEnv: { LIVETV_SLOT_SECONDS: '2' } });
  let browser: Browser;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM_PATH)`);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  });
  afterAll(async () => {
    await browser.close();
  });

  /**
   * Runs `visit` on a page whose every request to anything but the gateway is blocked, then checks that
   * the page asked nothing elsewhere and threw nothing.
   */
  async function offline(visit: (page: Page) => Promise<void>): Promise<void> {
    const context = await browser.newContext();
    // Below the test's timeout: a wait of Playwright's that gives up names what it waited for.
    context.setDefaultTimeout(WAIT_MS);
    const elsewhere: string[] = [];
    const failures: string[] = [];
    const gateway = new URL(fx.gateway.url).origin;
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (new URL(url).origin === gateway) return route.continue();
      elsewhere.push(url);
      return route.abort();
    });
    const page = await context.newPage();
    page.on('pageerror', (error) => failures.push(error.message));
    try {
      await visit(page);
      expect(elsewhere).toEqual([]);
      expect(failures).toEqual([]);
    } finally {
      await context.close();
    }
  }

  it('shows the REST API from /docs, its assets and /openapi.json from the gateway alone', async () => {
    await offline(async (page) => {
      await page.goto(`${fx.gateway.url}/docs`);
      await page.getByText('TV streaming gateway: REST').first().waitFor();
      await page.getByText('/ondemand/movies/{id}').first().waitFor();
      expect(await page.getByText('Authorize').count()).toBeGreaterThan(0);
    });
  });

  it('loads GraphiQL from the gateway alone, opens on the demo logins, and runs a query through the UI', async () => {
    await offline(async (page) => {
      await page.goto(`${fx.gateway.url}/graphql`);
      // The example operations: the demo logins in the comment, Login and HomeScreen to run.
      await page.getByRole('button', { name: /Execute query/ }).click();
      await page.getByRole('menuitem', { name: 'HomeScreen' }).click();
      await page.getByText('"Premium"').first().waitFor();
      expect(await page.getByText('alice / alice-password').count()).toBeGreaterThan(0);
    });
  });

  it('runs the example subscription through the UI over GraphQL over SSE, with the headers editor’s token: the programme on air, then the next one', async () => {
    const token = await login(fx.gateway.url, 'alice');
    const openStreams = async () => sample(await (await fetch(`${fx.gateway.url}/metrics`)).text(), 'gateway_graphql_subscriptions', { transport: 'sse' });
    await offline(async (page) => {
      const streams: { method: string; path: string; authorization: string | undefined }[] = [];
      page.on('request', (request) => {
        const headers = request.headers();
        if (headers.accept === 'text/event-stream') streams.push({ method: request.method(), path: new URL(request.url()).pathname, authorization: headers.authorization });
      });
      await page.goto(`${fx.gateway.url}/graphql`);
      // As a developer would: the token typed under Headers (the editor closes brackets and quotes, and types over them).
      await page.getByText('Headers', { exact: true }).click();
      const headers = page.getByRole('region', { name: 'Headers' }).getByRole('code');
      await headers.click();
      await page.keyboard.press('ControlOrMeta+A');
      await page.keyboard.press('Backspace');
      await page.keyboard.type(JSON.stringify({ Authorization: `Bearer ${token}` }));
      await page.getByRole('button', { name: /Execute query/ }).click();
      await page.getByRole('menuitem', { name: 'OnAir' }).click();
      // The response pane (an editor: its spaces are non-breaking) shows the latest result.
      const response = page.locator('.graphiql-response');
      let text = '';
      const shownEnd = async () => {
        text = (await response.innerText()).replace(/\u00a0/g, ' ');
        return /"end":\s*"([^"]+)"/.exec(text)?.[1];
      };
      const first = await eventually(() => `a programme in the response pane (it shows: ${text})`, shownEnd);
      expect(text).toMatch(/"nowPlaying"/);
      const next = await eventually(
        () => `the programme after the one ending ${first} (the pane shows: ${text})`,
        async () => {
          const end = await shownEnd();
          return end !== undefined && Date.parse(end) > Date.parse(first) && end;
        },
      );
      expect(Date.parse(next) - Date.parse(first)).toBe(2000);
      expect(streams).toEqual([{ method: 'GET', path: '/graphql', authorization: `Bearer ${token}` }]);
      // Stop ends the stream on the gateway too.
      expect(await openStreams()).toBe(1);
      await page.getByRole('button', { name: /Stop query/ }).click();
      await eventually('the gateway to see the stream end', async () => (await openStreams()) === 0);
    });
  });
});
