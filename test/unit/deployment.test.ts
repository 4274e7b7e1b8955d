/**
 * The Dockerfile, the Compose file and the Kubernetes manifests, checked statically (no Docker engine
 * or cluster here): the topology (only the gateway or its load balancer published, every service
 * health-checked and health-gated), the settings (only variables the code reads, loaded as they are),
 * secrets as files, hardening, and drain timings that agree with the code.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Service } from 'kubernetes-models/v1/Service';
import { parse, parseAllDocuments } from 'yaml';
import { CONFIG_VARIABLES, loadConfig } from '../../gateway/src/config.js';
import { CHANGE_EVENTS_PATH } from '../../shared/change-events.js';
import { GATEWAY_NODE_FLAGS } from '../../shared/node-flags.js';
import { UPSTREAM_NAMES, UPSTREAMS, servicePort } from '../../shared/upstreams.js';
import { SERVICE_VARIABLES, serviceEnvironment } from '../../services/lib/environment.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
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
  it('builds and prunes in one stage, and runs only compiled JavaScript with production dependencies in the next', () => {
    expect(stages).toHaveLength(2);
    expect(stages[0]).toMatch(/RUN npm ci /);
    expect(stages[0]).toMatch(/RUN npm run build && npm prune --omit=dev/);
    expect(runtime).not.toMatch(/^RUN npm (ci|install)/m);
    expect(runtime).toMatch(/^COPY --from=build \/app\/node_modules \.\/node_modules$/m);
    expect(runtime).toMatch(/^COPY --from=build \/app\/dist \.\/dist$/m);
    expect(JSON.parse(/^CMD (\[.*\])$/m.exec(runtime)?.[1] ?? '[]')).toEqual(['node', ...GATEWAY_NODE_FLAGS, 'dist/gateway/src/main.js']);
    // The same flags for `npm run start:gateway` (the launcher, the benchmarks and the tests import them).
    const { scripts } = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { scripts: Record<string, string> };
    expect(scripts['start:gateway']).toMatch(new RegExp(`&& exec node ${GATEWAY_NODE_FLAGS.join(' ')} dist/gateway/src/main\\.js$`));
    // A heap limit that bounds how much garbage the old generation keeps (shared/node-flags.ts).
    expect(GATEWAY_NODE_FLAGS).toContain('--max-old-space-size=256');
    expect(existsSync(`${ROOT}dist/gateway/src/main.js`)).toBe(true);
    expect(runtime).not.toMatch(/tsx|typescript|vitest/);
    // The build's own command, as CI runs it.
    expect((JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { scripts: Record<string, string> }).scripts.build).toBeDefined();
  });

  it('runs as a non-root user on the Node LTS slim image, reachable from outside, health-checked, stopped with SIGTERM, labelled', () => {
    // Node 26: the Active LTS line since October 2026 (the suite passes on 24.22.3 and 26.12.1 too).
    expect(dockerfile).toMatch(/^FROM node:26-slim AS build$/m);
    expect(runtime).toMatch(/^node:26-slim$/m);
    const user = /^USER (\S+)$/m.exec(runtime)?.[1] ?? '';
    expect(user).toMatch(/^[1-9]\d*:[1-9]\d*$/);
    expect(runtime).toMatch(/^ENV NODE_ENV=production HOST=0\.0\.0\.0 PORT=4000$/m);
    expect(runtime).toMatch(/^STOPSIGNAL SIGTERM$/m);
    const healthcheck = /^HEALTHCHECK .* CMD \["node", "([^"]+)"\]$/m.exec(runtime)?.[1] ?? '';
    expect(healthcheck).toBe('dist/scripts/healthcheck.js');
    expect(existsSync(`${ROOT}${healthcheck}`)).toBe(true);
    const { version } = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { version: string };
    for (const label of ['title', 'description', 'source', 'version', 'licenses']) expect(runtime).toContain(`org.opencontainers.image.${label}=`);
    expect(runtime).toContain(`org.opencontainers.image.version="${version}"`);
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

  it('ships the services’ migrations, which they apply as they start', () => {
    expect(copies(runtime)).toContainEqual({ sources: ['services/migrations'], destination: './services/migrations' });
  });

  it('keeps tests, benchmarks, dependencies, secrets and .env files out of the build context', () => {
    const ignored = readFileSync(`${ROOT}.dockerignore`, 'utf8').split('\n');
    for (const entry of ['node_modules', 'test', 'bench', 'dist', '.env', 'secrets', '.git', '.data']) expect(ignored, entry).toContain(entry);
  });
});

interface ComposeFile {
  services: Record<string, {
    profiles?: string[];
    image?: string;
    command?: string[];
    ports?: string[];
    environment?: Record<string, string>;
    volumes?: string[];
    user?: string;
    healthcheck?: { test: string[] };
    depends_on?: Record<string, { condition: string }>;
    secrets?: string[];
    stop_grace_period?: string;
    read_only?: boolean;
    cap_drop?: string[];
    deploy?: { resources?: { limits?: { cpus: string; memory: string } } };
  }>;
  secrets: Record<string, { file: string }>;
}

/** A compose value with `${NAME:-default}` taken at its default, as with no .env. */
const withDefaults = (value: string) => value.replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1');

/** Files holding made-up secrets, by secret name, for configurations that read `NAME_FILE`. */
function secretFiles(names: readonly string[]): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), 'deploy-secrets-'));
  return Object.fromEntries(names.map((name) => {
    writeFileSync(join(dir, name), `${name}-a-made-up-value-long-enough-for-hs256-0123456789\n`);
    return [name, join(dir, name)];
  }));
}

describe('the Compose file', () => {
  const compose = parse(readFileSync(`${ROOT}docker-compose.yml`, 'utf8'), { merge: true }) as ComposeFile;
  const services = compose.services;
  const gateways = Object.keys(services).filter((name) => name.startsWith('api_gateway_'));
  const reference = UPSTREAM_NAMES.map((upstream) => {
    const entry = Object.entries(services).find(([, service]) => service.command?.[1] === 'dist/services/main.js' && service.command[2] === upstream);
    return { upstream, name: entry?.[0] ?? '', service: entry?.[1] };
  });

  it('runs every reference service from the build, once', () => {
    for (const { upstream, service } of reference) {
      expect(service, upstream).toBeDefined();
      expect(service?.profiles, upstream).toBeUndefined();
    }
    expect(existsSync(`${ROOT}dist/services/main.js`)).toBe(true);
  });

  it('publishes only the gateway (host 80), the scaled profile’s load balancer, and the observability UIs on localhost', () => {
    const published = Object.fromEntries(Object.entries(services).filter(([, service]) => service.ports).map(([name, service]) => [name, (service.ports ?? []).map(withDefaults)]));
    expect(published.api_gateway_service).toEqual(['80:4000']);
    expect(published.load_balancer).toEqual(['8080:80']);
    for (const [name, ports] of Object.entries(published)) {
      if (name === 'api_gateway_service' || name === 'load_balancer') continue;
      expect(services[name]?.profiles, name).toEqual(['observability']);
      for (const port of ports) expect(port, name).toMatch(/^127\.0\.0\.1:/);
    }
  });

  it('health-checks every service, and starts each gateway only once all it needs is healthy', () => {
    for (const [name, service] of Object.entries(services)) {
      if (service.profiles?.includes('observability')) continue;
      expect(service.healthcheck?.test.length, name).toBeGreaterThan(0);
    }
    for (const { upstream, name, service } of reference) {
      const port = servicePort(upstream, 8000);
      expect(service?.healthcheck?.test, name).toEqual(['CMD', 'node', 'dist/scripts/healthcheck.js', `http://127.0.0.1:${port}/health`]);
      // Every container reaches it where it listens.
      for (const gateway of gateways) expect(services[gateway]?.environment?.[UPSTREAMS[upstream].envVar], `${gateway} → ${upstream}`).toBe(`http://${name}:${port}`);
    }
    const needed = [...reference.map(({ name }) => name), 'redis'].sort();
    for (const gateway of gateways) {
      expect(Object.keys(services[gateway]?.depends_on ?? {}).sort(), gateway).toEqual(needed);
      for (const [dependency, { condition }] of Object.entries(services[gateway]?.depends_on ?? {})) expect(condition, `${gateway} → ${dependency}`).toBe('service_healthy');
    }
    const replicas = gateways.filter((name) => services[name]?.profiles?.includes('scaled'));
    expect(replicas).toHaveLength(3);
    expect(Object.entries(services.load_balancer?.depends_on ?? {})).toEqual(replicas.map((name) => [name, { condition: 'service_healthy' }]));
  });

  it('balances the scaled profile over its three replicas, health-checked on /ready, sharing through a bounded Redis', () => {
    // Only keys with a time to live are evicted: the caches' generations never are.
    expect(services.redis?.command?.join(' ')).toMatch(/--maxmemory \d+mb --maxmemory-policy volatile-lru/);
    const traefik = parse(readFileSync(`${ROOT}deploy/traefik/dynamic.yml`, 'utf8')) as { http: { services: { gateway: { loadBalancer: { healthCheck: { path: string }; servers: { url: string }[] } } } } };
    const { loadBalancer } = traefik.http.services.gateway;
    expect(loadBalancer.healthCheck.path).toBe('/ready');
    expect(loadBalancer.servers.map((server) => server.url)).toEqual(gateways.filter((name) => services[name]?.profiles?.includes('scaled')).map((name) => `http://${name}:4000`));
    for (const gateway of gateways) expect(services[gateway]?.environment?.REDIS_URL, gateway).toBe('redis://redis:6379');
  });

  it('gives secrets as files only, each one declared, and none in the environment or .env.example', () => {
    for (const [name, { file }] of Object.entries(compose.secrets)) expect(file, name).toBe(`./secrets/${name}`);
    for (const [name, service] of Object.entries(services)) {
      for (const secret of service.secrets ?? []) expect(compose.secrets[secret], `${name}: ${secret}`).toBeDefined();
      for (const [variable, value] of Object.entries(service.environment ?? {})) {
        expect(['JWT_SECRET_KEY', 'REDIS_PASSWORD', 'PLAYBACK_SIGNING_KEY', 'CHANGE_EVENTS_SECRET', 'DATABASE_PASSWORD', 'POSTGRES_PASSWORD'], `${name}: ${variable}`).not.toContain(variable);
        if (variable === 'DATABASE_URL') expect(new URL(value).password, `${name}: ${variable}`).toBe('');
        if (variable.endsWith('_FILE')) expect(service.secrets?.map((secret) => `/run/secrets/${secret}`), `${name}: ${variable}`).toContain(value);
      }
    }
    const example = readFileSync(`${ROOT}.env.example`, 'utf8');
    expect(example).not.toMatch(/^(JWT_SECRET_KEY|REDIS_PASSWORD|REDIS_URL|PLAYBACK_SIGNING_KEY|CHANGE_EVENTS_SECRET)\b/m);
  });

  it('sets only variables the gateway and the services read, and each gateway’s settings load as they are', () => {
    for (const gateway of gateways) {
      const environment = services[gateway]?.environment ?? {};
      for (const variable of Object.keys(environment)) expect(CONFIG_VARIABLES, `${gateway}: ${variable}`).toContain(variable);
      const files = secretFiles(services[gateway]?.secrets ?? []);
      const env = Object.fromEntries(Object.entries(environment).map(([name, value]) => [name, name.endsWith('_FILE') ? (files[value.replace('/run/secrets/', '')] ?? '') : withDefaults(value)]));
      const config = loadConfig({ ...env, NODE_ENV: 'production', HOST: '0.0.0.0' });
      expect(config.redis?.password, gateway).toMatch(/^redis_password-/);
      expect(config.jwt.usesDevelopmentSecret, gateway).toBe(false);
      expect(config.adminPort, gateway).toBe(9464);
      expect(config.changeEventsSecret, gateway).toMatch(/^change_events_secret-/);
    }
    for (const { name, service } of reference) {
      for (const variable of Object.keys(service?.environment ?? {})) {
        expect(SERVICE_VARIABLES.has(variable) || variable.startsWith('OTEL_'), `${name}: ${variable}`).toBe(true);
      }
    }
  });

  it('gives the services that keep data the design’s Postgres: postgres:17-alpine, a volume, pg_isready, its password a secret both ends read, healthy before they start', () => {
    const db = services.db;
    expect(db?.image).toBe('postgres:17-alpine');
    expect(db?.volumes).toEqual(['pg_data:/var/lib/postgresql/data']);
    expect(db?.healthcheck?.test).toEqual(['CMD-SHELL', 'pg_isready -U tv -d tv_streaming_db']);
    expect(db?.environment).toEqual({ POSTGRES_DB: 'tv_streaming_db', POSTGRES_USER: 'tv', POSTGRES_PASSWORD_FILE: '/run/secrets/db_password' });
    expect([db?.user, db?.read_only, db?.cap_drop]).toEqual(['70:70', true, ['ALL']]);
    expect(db?.ports).toBeUndefined();
    for (const { upstream, name, service } of reference) {
      // A service keeps data when it has migrations.
      if (!existsSync(`${ROOT}services/migrations/${upstream}`)) {
        expect([service?.environment?.DATABASE_URL, service?.secrets, service?.depends_on], name).toEqual([undefined, ['jwt_secret_key', 'playback_signing_key'], undefined]);
        continue;
      }
      expect(service?.depends_on, name).toEqual({ db: { condition: 'service_healthy' } });
      const files = secretFiles(service?.secrets ?? []);
      const env = Object.fromEntries(Object.entries(service?.environment ?? {}).map(([variable, value]) => [variable, variable.endsWith('_FILE') ? (files[value.replace('/run/secrets/', '')] ?? '') : withDefaults(value)]));
      expect(serviceEnvironment(env).database, name).toEqual({ kind: 'postgres', url: 'postgres://tv@db:5432/tv_streaming_db', password: readFileSync(files.db_password ?? '', 'utf8').trimEnd() });
    }
  });

  it('sends the live TV service’s change events to the published gateway’s admin port, signed with a key only the gateways and live TV get', () => {
    const liveTv = reference.find(({ upstream }) => upstream === 'livetv');
    const holders = Object.keys(services).filter((name) => services[name]?.secrets?.includes('change_events_secret'));
    expect(holders.sort()).toEqual([...gateways, liveTv?.name].sort());
    for (const [name, service] of Object.entries(services)) {
      const environment = service.environment ?? {};
      expect(environment.CHANGE_EVENTS_SECRET_FILE, name).toBe(holders.includes(name) ? '/run/secrets/change_events_secret' : undefined);
      if (name !== liveTv?.name) expect(environment.CHANGE_EVENTS_URL, name).toBeUndefined();
    }
    // One gateway is enough: it puts the change on the bus every replica hears. That one runs in every profile.
    const published = services.api_gateway_service;
    expect(published?.profiles).toBeUndefined();
    const url = `http://api_gateway_service:${published?.environment?.ADMIN_PORT ?? ''}${CHANGE_EVENTS_PATH}`;
    expect(liveTv?.service?.environment?.CHANGE_EVENTS_URL).toBe(url);
    // Both ends read the same file: what live TV signs with is what the gateway checks with.
    const files = secretFiles(liveTv?.service?.secrets ?? []);
    const env = Object.fromEntries(Object.entries(liveTv?.service?.environment ?? {}).map(([name, value]) => [name, name.endsWith('_FILE') ? (files[value.replace('/run/secrets/', '')] ?? '') : withDefaults(value)]));
    expect(serviceEnvironment(env).changeEvents).toEqual({ url, secret: readFileSync(files.change_events_secret ?? '', 'utf8').trimEnd() });
  });

  it('gives a stopping gateway as long as it drains, and runs every container of the image hardened and limited', () => {
    const { shutdown } = loadConfig({});
    for (const gateway of gateways) {
      const environment = services[gateway]?.environment ?? {};
      expect(Number(environment.SHUTDOWN_DRAIN_MS), gateway).toBe(shutdown.drainMs);
      expect(Number(environment.SHUTDOWN_GRACE_MS), gateway).toBe(shutdown.graceMs);
      expect(Number(/^(\d+)s$/.exec(services[gateway]?.stop_grace_period ?? '')?.[1]) * 1000, gateway).toBeGreaterThan(shutdown.drainMs + shutdown.graceMs);
    }
    for (const [name, service] of Object.entries(services)) {
      if (service.image !== 'tv-streaming-gateway:local') continue;
      expect(service.read_only, name).toBe(true);
      expect(service.cap_drop, name).toEqual(['ALL']);
      expect(service.deploy?.resources?.limits?.memory, name).toMatch(/^\d+M$/);
    }
  });
});

interface K8sContainer {
  name: string;
  image?: string;
  command?: string[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  envFrom?: { configMapRef: { name: string } }[];
  ports?: { name: string; containerPort: number }[];
  readinessProbe?: { httpGet?: { path: string; port: string } };
  livenessProbe?: { httpGet?: { path: string; port: string }; tcpSocket?: { port: string } };
  lifecycle?: { preStop?: { sleep?: { seconds: number } } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: { allowPrivilegeEscalation?: boolean; readOnlyRootFilesystem?: boolean; capabilities?: { drop?: string[] } };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface K8sResource {
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: {
    replicas?: number;
    type?: string;
    selector?: Record<string, unknown>;
    ports?: { name: string; port: number; targetPort: string }[];
    template?: {
      metadata: { labels: Record<string, string> };
      spec: {
        terminationGracePeriodSeconds?: number;
        securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
        containers: K8sContainer[];
        volumes?: { name: string; secret?: { secretName: string; items: { key: string; path: string }[] } }[];
      };
    };
    podSelector?: { matchLabels?: Record<string, string> };
    policyTypes?: string[];
    ingress?: { from?: { podSelector?: { matchLabels: Record<string, string> }; namespaceSelector?: { matchLabels: Record<string, string> } }[]; ports?: { port: number }[] }[];
    minReplicas?: number;
    minAvailable?: number;
    scaleTargetRef?: { kind: string; name: string };
    rules?: { http: { paths: { backend: { service: { name: string; port: { name: string } } } }[] } }[];
  };
  data?: Record<string, string>;
}

describe('the Kubernetes manifests (deploy/k8s, a Kustomize base)', () => {
  const K8S = `${ROOT}deploy/k8s/`;
  const kustomization = parse(readFileSync(`${K8S}kustomization.yaml`, 'utf8')) as { resources: string[]; namespace: string };
  const resources = kustomization.resources.flatMap((file) => parseAllDocuments(readFileSync(`${K8S}${file}`, 'utf8')).map((document) => document.toJS() as K8sResource));
  const find = (kind: string, name: string) => resources.find((resource) => resource.kind === kind && resource.metadata.name === name);
  const deployments = resources.filter((resource) => resource.kind === 'Deployment');
  const gateway = find('Deployment', 'gateway');
  const gatewayContainer = gateway?.spec?.template?.spec.containers[0];
  const settings = find('ConfigMap', 'gateway-settings')?.data ?? {};
  /** The variables a container gets: its ConfigMaps', then its own `env`. */
  const variablesOf = (container: K8sContainer | undefined): Record<string, string> => Object.assign(
    {},
    ...(container?.envFrom ?? []).map((source) => find('ConfigMap', source.configMapRef.name)?.data ?? {}),
    ...(container?.env ?? []).map((variable) => ({ [variable.name]: variable.value ?? '' })),
  ) as Record<string, string>;
  /** The keys of the Secret a deployment's pods mount. */
  const secretKeysOf = (deployment: K8sResource) => (deployment.spec?.template?.spec.volumes ?? []).flatMap((volume) => volume.secret?.items.map((item) => item.key) ?? []);
  const isReference = (deployment: K8sResource) => deployment.spec?.template?.metadata.labels['app.kubernetes.io/component'] === 'reference-service';

  it('lists files that exist, in one namespace', () => {
    for (const file of kustomization.resources) expect(existsSync(`${K8S}${file}`), file).toBe(true);
    expect(find('Namespace', kustomization.namespace)).toBeDefined();
  });

  it('holds only resources valid against the Kubernetes API schemas (kubernetes-models, offline)', () => {
    const models: Record<string, new (data: never) => { validate(): void }> = { Namespace, ConfigMap, Service, Deployment, StatefulSet, HorizontalPodAutoscaler, PodDisruptionBudget, NetworkPolicy, Ingress };
    for (const resource of resources) {
      const Model = models[resource.kind];
      expect(Model, resource.kind).toBeDefined();
      expect(() => new (Model as NonNullable<typeof Model>)(resource as never).validate(), `${resource.kind} ${resource.metadata.name}`).not.toThrow();
    }
    // The schemas do catch a wrong field.
    const broken = { ...gateway, spec: { ...gateway?.spec, replicas: 'three' } };
    expect(() => new Deployment(broken as never).validate()).toThrow(/replicas must be integer/);
  });

  it('runs three gateway replicas, ready on /ready, alive on /health, autoscaled and kept available through disruptions', () => {
    expect(gateway?.spec?.replicas).toBe(3);
    // Every replica shares through one bounded Redis, which evicts only keys with a time to live.
    expect(settings.REDIS_URL).toBe('redis://redis:6379');
    expect(find('Deployment', 'redis')?.spec?.template?.spec.containers[0]?.command?.join(' ')).toMatch(/--maxmemory \d+mb --maxmemory-policy volatile-lru/);
    const ports = new Set(gatewayContainer?.ports?.map((port) => port.name));
    expect(gatewayContainer?.readinessProbe?.httpGet).toEqual({ path: '/ready', port: 'http' });
    expect(gatewayContainer?.livenessProbe?.httpGet).toEqual({ path: '/health', port: 'http' });
    expect(ports.has('http')).toBe(true);
    expect(gatewayContainer?.ports?.find((port) => port.name === 'http')?.containerPort).toBe(Number(settings.PORT));
    expect(gatewayContainer?.ports?.find((port) => port.name === 'admin')?.containerPort).toBe(Number(settings.ADMIN_PORT));
    expect(find('HorizontalPodAutoscaler', 'gateway')?.spec).toMatchObject({ scaleTargetRef: { kind: 'Deployment', name: 'gateway' }, minReplicas: 3 });
    expect(find('PodDisruptionBudget', 'gateway')?.spec?.minAvailable).toBe(2);
  });

  it('lets a stopping gateway leave the Service, drain and finish within its grace period', () => {
    const preStop = gatewayContainer?.lifecycle?.preStop?.sleep?.seconds ?? 0;
    const { shutdown } = loadConfig({});
    expect(Number(settings.SHUTDOWN_DRAIN_MS)).toBe(shutdown.drainMs);
    expect(Number(settings.SHUTDOWN_GRACE_MS)).toBe(shutdown.graceMs);
    expect(preStop).toBeGreaterThan(0);
    expect((gateway?.spec?.template?.spec.terminationGracePeriodSeconds ?? 0) * 1000).toBeGreaterThan(preStop * 1000 + shutdown.drainMs + shutdown.graceMs);
  });

  it('runs every pod non-root, read-only, unprivileged, without capabilities, with requests and limits', () => {
    expect(deployments.length).toBe(8);
    for (const deployment of deployments) {
      const pod = deployment.spec?.template?.spec;
      expect(pod?.securityContext?.runAsNonRoot, deployment.metadata.name).toBe(true);
      for (const container of pod?.containers ?? []) {
        expect(container.securityContext, deployment.metadata.name).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
        for (const kind of ['requests', 'limits'] as const) expect(Object.keys(container.resources?.[kind] ?? {}).sort(), `${deployment.metadata.name} ${kind}`).toEqual(['cpu', 'memory']);
      }
    }
  });

  it('runs the six reference services inside the cluster only, where the gateway’s settings point', () => {
    for (const upstream of UPSTREAM_NAMES) {
      const deployment = deployments.find((resource) => resource.spec?.template?.spec.containers[0]?.command?.[2] === upstream);
      const container = deployment?.spec?.template?.spec.containers[0];
      expect(container?.command, upstream).toEqual(['node', 'dist/services/main.js', upstream]);
      const base = Number(container?.env?.find((variable) => variable.name === 'SERVICES_BASE_PORT')?.value);
      const port = servicePort(upstream, base);
      expect(container?.ports, upstream).toEqual([{ name: 'http', containerPort: port }]);
      expect(container?.readinessProbe?.httpGet, upstream).toEqual({ path: '/health', port: 'http' });
      const service = find('Service', deployment?.metadata.name ?? '');
      expect(service?.spec?.ports, upstream).toEqual([{ name: 'http', port, targetPort: 'http' }]);
      expect(settings[UPSTREAMS[upstream].envVar], upstream).toBe(`http://${service?.metadata.name ?? ''}:${port}`);
    }
    for (const service of resources.filter((resource) => resource.kind === 'Service')) expect(service.spec?.type, service.metadata.name).toBeUndefined();
    const ingress = find('Ingress', 'gateway');
    expect(ingress?.spec?.rules?.flatMap((rule) => rule.http.paths.map((path) => path.backend.service))).toEqual([{ name: 'gateway', port: { name: 'http' } }]);
  });

  it('sets only variables the gateway and the services read; the gateway’s settings load, secrets mounted where they say', () => {
    for (const variable of Object.keys(settings)) expect(CONFIG_VARIABLES, variable).toContain(variable);
    for (const deployment of deployments) {
      const readBy = deployment === gateway ? new Set(CONFIG_VARIABLES) : isReference(deployment) ? SERVICE_VARIABLES : new Set<string>();
      for (const container of deployment.spec?.template?.spec.containers ?? []) {
        for (const variable of Object.keys(variablesOf(container))) expect(readBy.has(variable), `${deployment.metadata.name}: ${variable}`).toBe(true);
      }
    }
    for (const deployment of deployments) {
      const pod = deployment.spec?.template?.spec;
      const mounted = new Map<string, string[]>();
      for (const container of pod?.containers ?? []) {
        for (const mount of container.volumeMounts ?? []) {
          const volume = pod?.volumes?.find((candidate) => candidate.name === mount.name);
          if (volume?.secret) mounted.set(mount.mountPath, volume.secret.items.map((item) => item.path));
        }
        for (const [variable, path] of Object.entries(variablesOf(container))) {
          if (!variable.endsWith('_FILE')) continue;
          const directory = path.slice(0, path.lastIndexOf('/'));
          expect(mounted.get(directory), `${deployment.metadata.name}: ${variable}`).toContain(path.slice(directory.length + 1));
        }
      }
    }
    const files = secretFiles(['jwt_secret_key', 'redis_password', 'change_events_secret']);
    const env = Object.fromEntries(Object.entries(settings).map(([name, value]) => [name, name.endsWith('_FILE') ? (files[value.split('/').at(-1) ?? ''] ?? '') : value]));
    const config = loadConfig(env);
    expect(config).toMatchObject({ nodeEnv: 'production', adminPort: 9464, trustProxyHops: 1, redis: { url: 'redis://redis:6379' } });
    expect(config.jwt.usesDevelopmentSecret).toBe(false);
    expect(config.changeEventsSecret).toMatch(/^change_events_secret-/);
  });

  it('lets the live TV service, and it alone, send change events to the gateway’s admin port through its Service, with a key only the two get', () => {
    const liveTv = deployments.find((deployment) => deployment.spec?.template?.spec.containers[0]?.command?.[2] === 'livetv');
    const liveTvContainer = liveTv?.spec?.template?.spec.containers[0];
    expect(deployments.filter((deployment) => secretKeysOf(deployment).includes('change_events_secret')).map((deployment) => deployment.metadata.name).sort()).toEqual(['gateway', liveTv?.metadata.name].sort());
    for (const deployment of deployments) {
      const variables = deployment.spec?.template?.spec.containers.map(variablesOf) ?? [];
      const holds = deployment === gateway || deployment === liveTv;
      for (const variable of variables) {
        expect(variable.CHANGE_EVENTS_SECRET_FILE, deployment.metadata.name).toBe(holds ? '/run/secrets/tv-backend/change_events_secret' : undefined);
        if (deployment !== liveTv) expect(variable.CHANGE_EVENTS_URL, deployment.metadata.name).toBeUndefined();
      }
    }
    // The URL names a Service of the gateway's pods, on the port that leads to the admin listener (not on the Ingress).
    const url = new URL(variablesOf(liveTvContainer).CHANGE_EVENTS_URL ?? '');
    expect(url.pathname).toBe(CHANGE_EVENTS_PATH);
    const service = find('Service', url.hostname);
    expect(service?.spec?.selector).toEqual(gateway?.spec?.selector?.matchLabels);
    const port = service?.spec?.ports?.find((candidate) => candidate.port === Number(url.port));
    expect(gatewayContainer?.ports?.find((candidate) => candidate.name === port?.targetPort)?.containerPort).toBe(Number(settings.ADMIN_PORT));
    expect(find('Ingress', 'gateway')?.spec?.rules?.flatMap((rule) => rule.http.paths.map((path) => path.backend.service.port.name))).not.toContain(port?.name);
    // The live TV service's settings load: it signs with the key the gateway checks with.
    const files = secretFiles(secretKeysOf(liveTv as K8sResource));
    const env = Object.fromEntries(Object.entries(variablesOf(liveTvContainer)).map(([name, value]) => [name, name.endsWith('_FILE') ? (files[value.split('/').at(-1) ?? ''] ?? '') : value]));
    expect(serviceEnvironment(env).changeEvents).toEqual({ url: url.href, secret: readFileSync(files.change_events_secret ?? '', 'utf8').trimEnd() });
  });

  it('gives the services that keep data DATABASE_URL from the tv-database Secret, and has an example Postgres: one instance, its own volume, reached by the services alone', () => {
    for (const upstream of UPSTREAM_NAMES) {
      const container = deployments.find((deployment) => deployment.spec?.template?.spec.containers[0]?.command?.[2] === upstream)?.spec?.template?.spec.containers[0];
      const url = container?.env?.find((variable) => variable.name === 'DATABASE_URL');
      // A service keeps data when it has migrations.
      expect(url?.valueFrom, upstream).toEqual(existsSync(`${ROOT}services/migrations/${upstream}`) ? { secretKeyRef: { name: 'tv-database', key: 'url' } } : undefined);
    }
    const postgres = find('StatefulSet', 'postgres') as (K8sResource & { spec: { serviceName: string; volumeClaimTemplates: { metadata: { name: string } }[] } }) | undefined;
    const pod = postgres?.spec?.template?.spec;
    const container = pod?.containers[0];
    expect(postgres?.spec?.replicas).toBe(1);
    expect(container?.image).toBe('postgres:17-alpine');
    expect(postgres?.spec.volumeClaimTemplates.map((claim) => claim.metadata.name)).toEqual(['data']);
    expect(container?.volumeMounts).toContainEqual({ name: 'data', mountPath: '/var/lib/postgresql/data' });
    expect(variablesOf(container)).toMatchObject({ POSTGRES_DB: 'tv_streaming_db', POSTGRES_USER: 'tv', POSTGRES_PASSWORD_FILE: '/run/secrets/tv-database/password', PGDATA: '/var/lib/postgresql/data/pgdata' });
    expect(pod?.volumes?.find((volume) => volume.name === 'secrets')?.secret).toEqual({ secretName: 'tv-database', items: [{ key: 'password', path: 'password' }] });
    expect(pod?.securityContext?.runAsNonRoot).toBe(true);
    expect(container?.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(find('Service', postgres?.spec.serviceName ?? '')?.spec?.ports).toEqual([{ name: 'postgres', port: 5432, targetPort: 'postgres' }]);
    const toPostgres = resources.find((resource) => resource.kind === 'NetworkPolicy' && resource.spec?.podSelector?.matchLabels?.['app.kubernetes.io/name'] === 'postgres');
    expect(toPostgres?.spec?.ingress).toEqual([{ from: [{ podSelector: { matchLabels: { 'app.kubernetes.io/component': 'reference-service' } } }], ports: [{ port: 5432 }] }]);
    expect(readFileSync(`${K8S}postgres.yaml`, 'utf8')).toMatch(/Prefer a managed database/);
  });

  it('lets only the gateway (and each other) reach the services, only the gateway reach Redis, and only Prometheus and live TV the admin port', () => {
    const policies = resources.filter((resource) => resource.kind === 'NetworkPolicy');
    expect(policies.find((policy) => JSON.stringify(policy.spec?.podSelector) === '{}' && policy.spec?.ingress === undefined)?.spec?.policyTypes).toEqual(['Ingress']);
    const toServices = policies.find((policy) => policy.spec?.podSelector?.matchLabels?.['app.kubernetes.io/component'] === 'reference-service');
    expect(toServices?.spec?.ingress?.flatMap((rule) => rule.from?.map((from) => from.podSelector?.matchLabels) ?? [])).toEqual([{ 'app.kubernetes.io/component': 'gateway' }, { 'app.kubernetes.io/component': 'reference-service' }]);
    const toRedis = policies.find((policy) => policy.spec?.podSelector?.matchLabels?.['app.kubernetes.io/name'] === 'redis');
    expect(toRedis?.spec?.ingress).toEqual([{ from: [{ podSelector: { matchLabels: { 'app.kubernetes.io/component': 'gateway' } } }], ports: [{ port: 6379 }] }]);
    // The gateway: its HTTP port from anywhere; the admin port from the monitoring namespace and the live TV pods only.
    const toGateway = policies.find((policy) => policy.spec?.podSelector?.matchLabels?.['app.kubernetes.io/name'] === 'gateway');
    expect(toGateway?.spec?.ingress).toEqual([
      { ports: [{ port: Number(settings.PORT) }] },
      { from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }], ports: [{ port: Number(settings.ADMIN_PORT) }] },
      { from: [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'live-tv-service' } } }], ports: [{ port: Number(settings.ADMIN_PORT) }] },
    ]);
    const selected = (labels: Record<string, string>) => deployments.filter((deployment) => Object.entries(labels).every(([key, value]) => deployment.spec?.template?.metadata.labels[key] === value)).map((deployment) => deployment.spec?.template?.spec.containers[0]?.command?.[2]);
    expect(selected(toGateway?.spec?.ingress?.[2]?.from?.[0]?.podSelector?.matchLabels ?? {})).toEqual(['livetv']);
    // The labels those policies select by are the pods' own.
    expect(gateway?.spec?.template?.metadata.labels['app.kubernetes.io/component']).toBe('gateway');
    expect(deployments.filter((deployment) => deployment.spec?.template?.metadata.labels['app.kubernetes.io/component'] === 'reference-service')).toHaveLength(6);
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
    const { GatewayMetrics } = await import('../../gateway/src/observability/metrics.js');
    const families = await new GatewayMetrics().registry.getMetricsAsJSON();
    return new Set(families.flatMap(({ name, type }) => (String(type) === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name])));
  }
  const metricNames = (expression: string) => [...expression.matchAll(/\bgateway_[a-z0-9_]+\b/g)].map(([name]) => name);

  it('adds its four services under the profile only, with pinned images and mounted files that exist', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      if (observability.includes(name)) expect(service.profiles, name).toEqual(['observability']);
      else expect(service.profiles ?? [], name).not.toContain('observability');
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
