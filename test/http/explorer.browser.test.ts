/**
 * The development explorer in a real browser: Debian's Chromium (`apt-get install chromium`; .ci/run
 * installs it) driven by playwright-core through its executable, no browser download. Every request to
 * anything but the gateway is blocked: the explorer must work offline.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useStack } from '../helpers/stack.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

describe('the GraphQL explorer and the REST docs, offline, in headless Chromium', () => {
  const fx = useStack({ upstreams: 'reference', env: { NODE_ENV: 'development', RATE_LIMIT_PER_MINUTE: '0' } });
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
});
