import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { PRODUCTION_NODE_FLAGS } from '../../scripts/lib/bench-procs.js';
import { buildGateway, type Gateway } from '../../src/app.js';
import { ensureDevKeys, mintDevToken, type DevKeyFiles } from '../../src/auth/dev-keys.js';
import { loadConfig } from '../../src/config/load.js';
import { isKnownEnvName } from '../../src/config/schema.js';
import { buildLegacyRestService } from '../../services/legacy-rest/app.js';
import { demoSubgraphs } from '../../subgraphs/catalogue.js';
import { startSubgraph, type RunningSubgraph } from '../../subgraphs/shared/server.js';
import {
  healthCheckCommand,
  healthCheckPath,
  localEnvironment,
  readComposeFile,
  type ComposeService,
  type LocalAddresses,
} from '../../scripts/lib/compose-file.js';
import { lazyGatewayJwks } from '../helpers/stack.js';

const compose = readComposeFile();
const composition = parse(readFileSync('supergraph/subgraphs.yaml', 'utf8')) as { subgraphs: Record<string, { routing_url: string }> };
const gateway = compose.services.gateway!;
const dockerfile = readFileSync('Dockerfile', 'utf8');

// Development keys of the test's own, standing in for the .dev/ files compose mounts as secrets.
const devDir = mkdtempSync(join(tmpdir(), 'gw-compose-keys-'));
let devKeys: DevKeyFiles;
/** Compose secrets → the local files that hold them here. */
const secretFiles = () => ({ 'dev-token-key': devKeys.tokenPublicKey });
beforeAll(async () => {
  devKeys = await ensureDevKeys(devDir);
});
afterAll(() => rmSync(devDir, { recursive: true, force: true }));

describe('docker-compose.yml', () => {
  it('runs the gateway, Redis and every subgraph of the composition', () => {
    expect(Object.keys(compose.services).sort()).toEqual(
      ['gateway', 'redis', 'legacy-rest', ...Object.keys(composition.subgraphs)].sort(),
    );
    expect(Object.keys(demoSubgraphs).sort()).toEqual(Object.keys(composition.subgraphs).sort());
  });

  it('configures the gateway only with names the gateway understands, and a valid configuration', () => {
    const env = localEnvironment(compose, gateway, { secrets: secretFiles() });
    expect(Object.keys(env).filter((name) => !isKnownEnvName(name))).toEqual([]);
    // Everything in it passes the same validation the gateway runs at start-up.
    const config = loadConfig(env);
    expect(config.redisUrl).toBe('redis://redis:6379');
  });

  it('trusts the development token key that `npm run token` signs with, which only development mode allows', () => {
    const secret = compose.secrets?.['dev-token-key'];
    expect(secret?.file).toBe('./.dev/token-verify.pem');
    expect(gateway.secrets).toContain('dev-token-key');
    expect(gateway.environment!.JWT_PUBLIC_KEY_FILE).toBe('/run/secrets/dev-token-key');
    const env = localEnvironment(compose, gateway, { secrets: secretFiles() });
    const config = loadConfig(env);
    expect(config.nodeEnv).toBe('development');
    expect(config.jwtAlgorithms).toEqual(['ES256']);
    // …which is why the stack runs in development mode: production refuses a development key.
    expect(() => loadConfig({ ...env, NODE_ENV: 'production' })).toThrow(/development keys/);
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
    const config = loadConfig(localEnvironment(compose, gateway, { secrets: secretFiles() }));
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

  it('gives every service a health check, and the gateway waits for its dependencies to be healthy', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      expect(service.healthcheck?.test, name).toBeDefined();
      // Built from our image: an HTTP probe of the service's own port (the image has node, not curl).
      if (service.build !== undefined) expect(healthCheckPath(service), name).toMatch(/^\//);
    }
    expect(compose.services.redis!.healthcheck!.test).toEqual(['CMD', 'redis-cli', 'ping']);
    expect(Object.keys(gateway.depends_on ?? {}).sort()).toEqual(Object.keys(compose.services).filter((name) => name !== 'gateway').sort());
    for (const [name, dependency] of Object.entries(gateway.depends_on ?? {})) expect(dependency.condition, name).toBe('service_healthy');
  });
});

/**
 * Every service of docker-compose.yml, started for real on port 0 the way its compose command would
 * (same code, compose environment made local), then asked by its own compose health check command.
 */
describe('docker-compose.yml services, started for real', () => {
  const urls: Record<string, string> = {};
  const stops: (() => Promise<unknown>)[] = [];
  const keys = lazyGatewayJwks();
  let gatewayApp: Gateway;

  const listening = (address: AddressInfo | string | null) => `127.0.0.1:${(address as AddressInfo).port}`;
  const isGateway = (service: ComposeService) => service.build !== undefined && service.command === undefined;

  beforeAll(async () => {
    for (const [name, service] of Object.entries(compose.services)) {
      const command = service.command ?? [];
      if (command[1] === 'dist/subgraphs/main.js') {
        const factory = demoSubgraphs[command[2]!];
        if (!factory) throw new Error(`${name}: no demo subgraph ${command[2]}`);
        const running: RunningSubgraph = await startSubgraph(factory(), { gatewayKey: keys.gatewayKey });
        urls[name] = listening(running.app.server.address());
        stops.push(() => running.close());
      } else if (command[1] === 'dist/services/legacy-rest/main.js') {
        const app = buildLegacyRestService();
        await app.listen({ port: 0, host: '127.0.0.1' });
        urls[name] = listening(app.server.address());
        stops.push(() => app.close());
      } else if (service.build !== undefined && !isGateway(service)) {
        throw new Error(`${name}: this test does not know how to start ${command.join(' ')}`);
      }
    }
    // Redis is not started: the gateway runs on in-memory state (REDIS_URL dropped).
    const local: LocalAddresses = { services: urls, secrets: secretFiles() };
    const config = loadConfig({ ...localEnvironment(compose, gateway, local), PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent' });
    gatewayApp = await buildGateway(config);
    stops.push(() => gatewayApp.app.close());
    await gatewayApp.app.listen({ port: 0, host: '127.0.0.1' });
    urls.gateway = listening(gatewayApp.app.server.address());
    keys.setUrl(`http://${urls.gateway}`);
    await gatewayApp.graphql.started;
  });
  afterAll(async () => {
    await Promise.all(stops.map((stop) => stop()));
  });

  /** Runs a compose health check command (not in-process: the servers above answer while it waits). */
  const runHealthCheck = (service: ComposeService, port: string, path?: string) => {
    const [command, ...args] = healthCheckCommand(service);
    if (path) args[args.length - 1] = path;
    return new Promise<number>((resolve) => {
      execFile(command === 'node' ? process.execPath : command!, args, { env: { PORT: port }, timeout: 10_000 }, (error) =>
        resolve(error ? Number(error.code ?? 1) : 0),
      );
    });
  };

  it('passes each HTTP health check, probing a path that service serves', async () => {
    const checked = Object.entries(compose.services).filter(([, service]) => service.build !== undefined);
    expect(checked.map(([name]) => name).sort()).toEqual(Object.keys(urls).sort());
    for (const [name, service] of checked) {
      const port = urls[name]!.split(':')[1]!;
      expect(await runHealthCheck(service, port), `${name} ${healthCheckPath(service)}`).toBe(0);
      // The probe is not vacuous: a path the service does not serve fails it.
      expect(await runHealthCheck(service, port, '/not-served-here'), name).not.toBe(0);
    }
  });

  it('accepts a token minted the way `npm run token` mints it, on REST routes and GraphQL', async () => {
    const gatewayUrl = `http://${urls.gateway}`;
    const token = await mintDevToken({ sub: 'u-acme-1', tenant: 'acme', roles: ['admin'], permissions: ['read:orders'] }, devDir);
    const authorization = `Bearer ${token}`;

    expect((await fetch(`${gatewayUrl}/api/v1/users`)).status).toBe(401);
    const users = await fetch(`${gatewayUrl}/api/v1/users`, { headers: { authorization } });
    expect(users.status).toBe(200);
    expect(await users.json()).toContainEqual({ id: 'u-acme-1', name: 'Alice Adams' });
    const whoami = (await (await fetch(`${gatewayUrl}/api/v1/whoami`, { headers: { authorization } })).json()) as { userId: string };
    expect(whoami.userId).toBe('u-acme-1');

    const me = await fetch(`${gatewayUrl}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization },
      body: JSON.stringify({ query: '{ me { name orders { id } } }' }),
    });
    const body = (await me.json()) as { data?: { me: { name: string; orders: unknown[] } }; errors?: unknown };
    expect(body.errors).toBeUndefined();
    expect(body.data?.me.name).toBe('Alice Adams');
  });
});

describe('Dockerfile', () => {
  it('is multi-stage and runs the built gateway as a non-root user', () => {
    expect(dockerfile.match(/^FROM /gm)?.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toContain(`CMD ${JSON.stringify(['node', ...PRODUCTION_NODE_FLAGS, 'dist/src/main.js'])}`.replace(/","/g, '", "'));
    // …with the same V8 flags as `npm run gateway` and the benchmarks (which measure what ships).
    const scripts = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.gateway?.startsWith(`node ${PRODUCTION_NODE_FLAGS.join(' ')} `)).toBe(true);
  });

  it('stays on Node 20, as package.json does', () => {
    for (const [, image] of dockerfile.matchAll(/^FROM (\S+)/gm)) expect(image).toMatch(/^node:20-/);
    const engines = (JSON.parse(readFileSync('package.json', 'utf8')) as { engines: { node: string } }).engines.node;
    expect(engines).toMatch(/^>=20\./);
  });

  it('refers to files that exist and to the same entry points docker-compose runs', () => {
    for (const [, source] of dockerfile.matchAll(/^COPY (?!--from)(\S+)/gm)) {
      for (const path of source!.split(' ')) expect(existsSync(path), path).toBe(true);
    }
    expect(existsSync('subgraphs/main.ts')).toBe(true);
    expect(dockerfile).toMatch(/ENV[\s\S]*SUPERGRAPH_PATH=supergraph\/supergraph.graphql/);
    expect(isKnownEnvName('SUPERGRAPH_PATH')).toBe(true);
    // Its own health check is the gateway's readiness, in the form compose uses for every service.
    expect(dockerfile).toContain(`"${healthCheckCommand(gateway)[2]}", "/health/ready"]`);
  });

  it('builds only what the image runs: no COPY of scripts/ or test/, which the build config leaves out', () => {
    expect(dockerfile).not.toMatch(/^COPY (scripts|test)\b/m);
    const build = parse(readFileSync('tsconfig.build.json', 'utf8').replace(/^\s*\/\/.*$/gm, '')) as { include: string[] };
    expect(build.include.sort()).toEqual(['services', 'src', 'subgraphs']);
    for (const dir of build.include) expect(dockerfile).toMatch(new RegExp(`^COPY ${dir} \\./${dir}$`, 'm'));
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

  it('has a Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget, ConfigMaps (settings, route table) and Secret', () => {
    expect(documents.map((d) => d.kind).sort()).toEqual(['ConfigMap', 'ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'Secret', 'Service']);
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
