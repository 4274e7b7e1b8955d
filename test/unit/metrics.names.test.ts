/** Operation names are the client's: which of them become metric labels, tried from the attacker's side. */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TV_APP_MANIFEST } from '../../scripts/lib/trusted-manifest.js';
import { loadTrustedDocuments } from '../../gateway/src/trusted-documents.js';
import { operationNamesOf } from '../../gateway/src/graphql/observability.js';
import { GatewayMetrics } from '../../gateway/src/observability/metrics.js';
import { sample } from '../helpers/metrics.js';

async function operations(metrics: GatewayMetrics, operation: string): Promise<number | undefined> {
  return sample(await metrics.registry.metrics(), 'gateway_graphql_operations_total', { operation, type: 'query', outcome: 'success' });
}

describe('operation names as metric labels', () => {
  it('gives a name its series by use: 2,000 made-up names sent first take none from HomeScreen', async () => {
    const metrics = new GatewayMetrics();
    for (let i = 0; i < 2000; i++) metrics.observeGraphQLOperation(`Made${i}`, 'query', 'success', []);
    for (let i = 0; i < 25; i++) metrics.observeGraphQLOperation('HomeScreen', 'query', 'success', []);
    expect(await operations(metrics, 'other')).toBe(2000 + 19);
    expect(await operations(metrics, 'HomeScreen')).toBe(6);
    expect(await operations(metrics, 'Made0')).toBeUndefined();
  });

  it('keeps 100 earned names; a name used more than the least used holder takes its place, whose series go', async () => {
    const metrics = new GatewayMetrics();
    metrics.reserveOperationNames(['Reserved']);
    for (let name = 0; name < 150; name++) for (let use = 0; use < 20; use++) metrics.observeGraphQLOperation(`Flood${name}`, 'query', 'success', []);
    metrics.observeGraphQLOperation('Reserved', 'query', 'success', []);
    let text = await metrics.registry.metrics();
    expect(text.match(/operation="Flood\d+"/g)).toHaveLength(100);
    expect(await operations(metrics, 'Reserved')).toBe(1);
    for (let use = 0; use < 21; use++) metrics.observeGraphQLOperation('HomeScreen', 'query', 'success', []);
    text = await metrics.registry.metrics();
    expect(await operations(metrics, 'HomeScreen')).toBe(1);
    expect(text.match(/operation="Flood\d+"/g)).toHaveLength(99);
  });
});

describe('operation names over time', () => {
  it('halves the holders’ counts every ten minutes: names pumped once lose their places to names in use now', async () => {
    let now = 0;
    const metrics = new GatewayMetrics(() => now);
    for (let name = 0; name < 100; name++) for (let use = 0; use < 40; use++) metrics.observeGraphQLOperation(`Pumped${name}`, 'query', 'success', []);
    for (let use = 0; use < 20; use++) metrics.observeGraphQLOperation('HomeScreen', 'query', 'success', []);
    expect(await operations(metrics, 'HomeScreen')).toBeUndefined();
    // Two halvings later the pumped names count 10 each: HomeScreen's 21st use takes a place.
    now += 10 * 60_000;
    metrics.observeGraphQLOperation('Other', 'query', 'success', []);
    now += 10 * 60_000;
    for (let use = 0; use < 20; use++) metrics.observeGraphQLOperation('HomeScreen', 'query', 'success', []);
    expect(await operations(metrics, 'HomeScreen')).toBe(20);
    expect((await metrics.registry.metrics()).match(/operation="Pumped\d+"/g)).toHaveLength(99);
  });
});

describe('the trusted documents’ operation names', () => {
  it('are read from the manifest (the typed TV app’s)', () => {
    const names = operationNamesOf(loadTrustedDocuments([fileURLToPath(TV_APP_MANIFEST)], 'require'));
    expect(names).toContain('HomeScreen');
    expect(names).toContain('Login');
  });
});
