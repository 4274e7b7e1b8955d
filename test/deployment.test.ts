/**
 * The Dockerfile and the Compose file, checked statically (no Docker engine here): they run the
 * compiled build, and the image holds every file the gateway reads at start.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const dockerfile = readFileSync(`${ROOT}Dockerfile`, 'utf8');
const stages = dockerfile.split(/^FROM /m).slice(1);
const runtime = stages.at(-1) ?? '';

/** The `COPY <source…> <destination>` lines of a stage (without --from copies). */
function copies(stage: string): { sources: string[]; destination: string }[] {
  return [...stage.matchAll(/^COPY (?!--from)(.+)$/gm)].map(([, args]) => {
    const parts = (args ?? '').trim().split(/\s+/);
    return { sources: parts.slice(0, -1), destination: parts.at(-1) ?? '' };
  });
}

describe('the Docker image', () => {
  it('builds in one stage and runs the compiled gateway in the next, on the current Node LTS', () => {
    expect(stages).toHaveLength(2);
    expect(stages[0]).toMatch(/RUN npm run build/);
    expect(runtime).toMatch(/RUN npm ci --omit=dev/);
    expect(runtime).toMatch(/COPY --from=build \/app\/dist \.\/dist/);
    expect(runtime).toContain('CMD ["node", "dist/gateway/src/main.js"]');
    expect(existsSync(`${ROOT}dist/gateway/src/main.js`)).toBe(true);
    expect(runtime).not.toMatch(/tsx/);
    expect(dockerfile).toMatch(/^FROM node:24-/m);
  });

  it('copies only files that exist, and everything the gateway reads at start', () => {
    for (const { sources } of stages.flatMap(copies)) for (const source of sources) expect(existsSync(`${ROOT}${source}`), source).toBe(true);
    const copied = copies(runtime).flatMap(({ sources }) => sources);
    const mesh = parse(readFileSync(`${ROOT}.meshrc.yaml`, 'utf8')) as { sources: { handler: { openapi: { source: string } } }[]; additionalTypeDefs: string };
    const readAtStart = ['.meshrc.yaml', 'package-lock.json', mesh.additionalTypeDefs, ...mesh.sources.map((source) => source.handler.openapi.source)];
    for (const file of readAtStart) {
      const relative = file.replace(/^\.\//, '');
      expect(copied.some((source) => relative === source || relative.startsWith(`${source}/`)), file).toBe(true);
    }
  });
});

describe('the Compose file', () => {
  it('runs every reference service from the build', () => {
    const compose = parse(readFileSync(`${ROOT}docker-compose.yml`, 'utf8')) as { services: Record<string, { command?: string[]; profiles?: string[] }> };
    const commands = Object.values(compose.services).flatMap((service) => (service.command && !service.profiles ? [service.command] : []));
    expect(commands).toHaveLength(6);
    for (const command of commands) {
      expect(command.slice(0, 2)).toEqual(['node', 'dist/services/main.js']);
      expect(existsSync(`${ROOT}${command[1] ?? ''}`)).toBe(true);
    }
  });
});

describe('the observability profile (collector, Jaeger, Prometheus with alerts, Grafana with a dashboard)', () => {
  interface ComposeService {
    profiles?: string[];
    image?: string;
    volumes?: string[];
    environment?: Record<string, string>;
  }
  const compose = parse(readFileSync(`${ROOT}docker-compose.yml`, 'utf8'), { merge: true }) as { services: Record<string, ComposeService> };
  const observability = ['otel-collector', 'jaeger', 'prometheus', 'grafana'];
  const read = (path: string) => readFileSync(`${ROOT}deploy/observability/${path}`, 'utf8');

  /** The metric families a gateway exposes (histograms with their series suffixes). */
  async function exposedSeries(): Promise<Set<string>> {
    const { GatewayMetrics } = await import('../gateway/src/observability/metrics.js');
    const families = await new GatewayMetrics().registry.getMetricsAsJSON();
    return new Set(families.flatMap(({ name, type }) => (String(type) === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name])));
  }
  const metricNames = (expression: string) => [...expression.matchAll(/\bgateway_[a-z0-9_]+\b/g)].map(([name]) => name);

  it('adds its four services under the profile only, with pinned images and mounted files that exist', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      expect(service.profiles ?? [], name).toEqual(observability.includes(name) ? ['observability'] : []);
    }
    for (const name of observability) {
      const service = compose.services[name] as ComposeService;
      expect(service.image, name).toMatch(/:[0-9v][\w.-]*$/);
      for (const volume of service.volumes ?? []) expect(existsSync(`${ROOT}${(volume.split(':')[0] ?? '').replace(/^\.\//, '')}`), volume).toBe(true);
    }
  });

  it('sends traces gateway → collector → Jaeger, once the endpoint is set', () => {
    const gateway = compose.services.api_gateway_service as ComposeService;
    expect(gateway.environment?.OTEL_EXPORTER_OTLP_ENDPOINT).toBe('${OTEL_EXPORTER_OTLP_ENDPOINT:-}');
    const collector = parse(read('otel-collector.yaml')) as { receivers: { otlp: { protocols: { http: { endpoint: string } } } }; exporters: Record<string, { endpoint: string }>; service: { pipelines: { traces: { receivers: string[]; exporters: string[] } } } };
    expect(collector.receivers.otlp.protocols.http.endpoint).toBe('0.0.0.0:4318');
    expect(collector.service.pipelines.traces.receivers).toEqual(['otlp']);
    expect(collector.service.pipelines.traces.exporters.map((name) => collector.exporters[name]?.endpoint)).toEqual(['jaeger:4317']);
  });

  it('scrapes the admin port, and every alert and dashboard query names metrics the gateway exposes', async () => {
    const gateway = compose.services.api_gateway_service as ComposeService;
    const prometheus = parse(read('prometheus.yml')) as { rule_files: string[]; scrape_configs: { static_configs: { targets: string[] }[] }[] };
    expect(prometheus.scrape_configs[0]?.static_configs[0]?.targets).toEqual([`api_gateway_service:${gateway.environment?.ADMIN_PORT}`]);
    expect(prometheus.rule_files).toEqual(['/etc/prometheus/alerts.yml']);

    const exposed = await exposedSeries();
    const alerts = (parse(read('alerts.yml')) as { groups: { rules: { alert: string; expr: string; for: string; labels: { severity: string }; annotations: { summary: string } }[] }[] }).groups.flatMap((group) => group.rules);
    expect(alerts.map((rule) => rule.alert).sort()).toEqual(['GatewayCircuitOpen', 'GatewayDown', 'GatewayHigh5xxRatio', 'GatewayRateLimitStoreDown', 'GatewayUpstreamDown']);
    for (const rule of alerts) {
      expect(rule.for, rule.alert).toMatch(/^\d+m$/);
      expect(['warning', 'critical'], rule.alert).toContain(rule.labels.severity);
      expect(rule.annotations.summary, rule.alert).not.toBe('');
      for (const name of metricNames(rule.expr)) expect(exposed, `${rule.alert}: ${name}`).toContain(name);
    }

    const dashboard = JSON.parse(read('grafana/dashboards/gateway.json')) as { panels: { title: string; targets: { expr: string }[] }[] };
    const queries = dashboard.panels.flatMap((panel) => panel.targets.map((target) => ({ panel: panel.title, expr: target.expr })));
    for (const { panel, expr } of queries) {
      expect(metricNames(expr).length, `${panel}: ${expr}`).toBeGreaterThan(0);
      for (const name of metricNames(expr)) expect(exposed, `${panel}: ${name}`).toContain(name);
    }
    // What the issue asks to see: rate, errors by code, latency per route and per upstream, rate limiting, breakers.
    const all = queries.map(({ expr }) => expr).join('\n');
    for (const needed of ['rate(gateway_http_requests_total', 'gateway_graphql_errors_total', 'by (le, route)', 'by (le, service)', 'gateway_rate_limited_total', 'gateway_upstream_circuit_state', 'gateway_rate_limit_store_up']) {
      expect(all).toContain(needed);
    }
  });
});
