import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { isKnownEnvName } from '../../src/config/schema.js';
import { demoSubgraphs } from '../../subgraphs/catalogue.js';

interface ComposeService {
  build?: unknown;
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
}
const compose = parse(readFileSync('docker-compose.yml', 'utf8'), { merge: true }) as { services: Record<string, ComposeService> };
const composition = parse(readFileSync('supergraph/subgraphs.yaml', 'utf8')) as { subgraphs: Record<string, { routing_url: string }> };
const gateway = compose.services.gateway!;

describe('docker-compose.yml', () => {
  it('runs the gateway, Redis and every subgraph of the composition', () => {
    expect(Object.keys(compose.services).sort()).toEqual(
      ['gateway', 'redis', 'legacy-rest', ...Object.keys(composition.subgraphs)].sort(),
    );
    expect(Object.keys(demoSubgraphs).sort()).toEqual(Object.keys(composition.subgraphs).sort());
  });

  it('configures the gateway only with names the gateway understands, and a valid configuration', () => {
    const env = gateway.environment!;
    expect(Object.keys(env).filter((name) => !isKnownEnvName(name))).toEqual([]);
    // Everything in it passes the same validation the gateway runs at start-up.
    const config = loadConfig(env);
    expect(config.redisUrl).toBe('redis://redis:6379');
  });

  it('points every subgraph URL override at a compose service listening on that port', () => {
    for (const name of Object.keys(composition.subgraphs)) {
      const url = new URL(gateway.environment![`SUBGRAPH_${name.toUpperCase()}_URL`]!);
      const service = compose.services[url.hostname];
      expect(service, `service for ${name}`).toBeDefined();
      expect(service!.environment!.PORT).toBe(url.port);
      expect(service!.command).toEqual(['node', 'dist/subgraphs/main.js', name]);
      // …and each subgraph verifies the gateway's context token against the gateway's own JWKS.
      const jwks = new URL(service!.environment!.GATEWAY_JWKS_URL!);
      expect(jwks.hostname).toBe('gateway');
      expect(jwks.port).toBe(gateway.environment!.PORT);
      expect(jwks.pathname).toBe('/.well-known/jwks.json');
    }
  });

  it('routes every *_SERVICE_URL to a compose service on that port, and the gateway derives its routes', () => {
    const config = loadConfig(gateway.environment!);
    const serviceUrls = Object.entries(gateway.environment!).filter(([name]) => name.endsWith('_SERVICE_URL'));
    expect(serviceUrls.length).toBeGreaterThan(0);
    for (const [name, value] of serviceUrls) {
      const url = new URL(value);
      expect(compose.services[url.hostname]?.environment?.PORT, name).toBe(url.port);
      const service = name.replace(/_SERVICE_URL$/, '').toLowerCase().replace(/_/g, '-');
      expect(config.routes.some((route) => route.prefix === `/api/v1/${service}`)).toBe(true);
    }
  });

  it('publishes the configured gateway port', () => {
    expect(gateway.ports).toContain(`${gateway.environment!.PORT}:${gateway.environment!.PORT}`);
  });
});

describe('Dockerfile', () => {
  const dockerfile = readFileSync('Dockerfile', 'utf8');
  it('is multi-stage and runs the built gateway as a non-root user', () => {
    expect(dockerfile.match(/^FROM /gm)?.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/CMD \["node", "dist\/src\/main.js"\]/);
  });

  it('refers to files that exist and to the same entry points docker-compose runs', () => {
    for (const [, source] of dockerfile.matchAll(/^COPY (?!--from)(\S+)/gm)) {
      for (const path of source!.split(' ')) expect(existsSync(path), path).toBe(true);
    }
    expect(existsSync('subgraphs/main.ts')).toBe(true);
    expect(dockerfile).toMatch(/ENV[\s\S]*SUPERGRAPH_PATH=supergraph\/supergraph.graphql/);
    expect(isKnownEnvName('SUPERGRAPH_PATH')).toBe(true);
  });
});

interface Probe {
  httpGet: { path: string };
}
interface PodTemplateOwner {
  template: {
    spec: { terminationGracePeriodSeconds: number; containers: { readinessProbe: Probe; livenessProbe: Probe }[] };
  };
}

describe('Kubernetes manifests', () => {
  const documents = parseAllDocuments(readFileSync('deploy/kubernetes/gateway.yaml', 'utf8')).map((d) => d.toJS() as {
    kind: string;
    data?: Record<string, string>;
    stringData?: Record<string, string>;
    spec?: PodTemplateOwner;
  });
  const byKind = (kind: string) => documents.find((d) => d.kind === kind)!;

  it('has a Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget, ConfigMap and Secret', () => {
    expect(documents.map((d) => d.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'Secret', 'Service']);
  });

  it('configures the gateway only with names it understands', () => {
    const env = { ...byKind('ConfigMap').data, ...byKind('Secret').stringData };
    expect(Object.keys(env).filter((name) => !isKnownEnvName(name))).toEqual([]);
  });

  it('probes the health endpoints and drains longer than the shutdown timeout', () => {
    const pod = byKind('Deployment').spec!.template.spec;
    const container = pod.containers[0]!;
    expect(container.readinessProbe.httpGet.path).toBe('/health/ready');
    expect(container.livenessProbe.httpGet.path).toBe('/health');
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(Number(byKind('ConfigMap').data!.SHUTDOWN_TIMEOUT_MS));
  });
});
