import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildGateway } from '../../src/app.js';
import { principalFromClaims } from '../../src/auth/claims.js';
import { ensureDevKeys } from '../../src/auth/dev-keys.js';
import { ConfigError, loadConfig, subgraphOverride } from '../../src/config/load.js';

const SUPERGRAPH_PATH = 'supergraph/supergraph.graphql';

describe('configuration', () => {
  it('has documented defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 4000,
      host: '0.0.0.0',
      supergraphPath: SUPERGRAPH_PATH,
      logLevel: 'info',
      nodeEnv: 'development',
      subgraphTimeoutMs: 10_000,
      subgraphMaxResponseBytes: 16_777_216,
    });
    expect(config.redisUrl).toBeUndefined();
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('measures operation cost by default and enforces it only once GRAPHQL_MAX_COST is set', () => {
    const defaults = loadConfig({}).operationLimits;
    expect(defaults.maxCost).toBeUndefined();
    expect(defaults.costInResponse).toBe(false);
    expect(defaults).toMatchObject({ maxDepth: 12, maxAliases: 20, maxDirectives: 30, maxTokens: 2000 });
    const enforced = loadConfig({ GRAPHQL_MAX_COST: '8000', GRAPHQL_COST_IN_RESPONSE: 'true' }).operationLimits;
    expect(enforced).toMatchObject({ maxCost: 8000, costInResponse: true });
    expect(() => loadConfig({ GRAPHQL_MAX_COST: '0' })).toThrow(/operationLimits.maxCost \(env GRAPHQL_MAX_COST\)/);
  });

  it('names the bad field and the variable it came from', () => {
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/port \(env PORT\)/);
    expect(() => loadConfig({ PORT: '70000' })).toThrow(/port \(env PORT\)/);
    expect(() => loadConfig({ LOG_LEVEL: 'loud' })).toThrow(/logLevel \(env LOG_LEVEL\)/);
    expect(() => loadConfig({ REDIS_URL: 'http://redis' })).toThrow(/redisUrl \(env REDIS_URL\)/);
    expect(() => loadConfig({ SUBGRAPH_ACCOUNTS_URL: 'not a url' })).toThrow(/subgraphs.ACCOUNTS.url \(env SUBGRAPH_ACCOUNTS_URL\)/);
    expect(() => loadConfig({ SUPERGRAPH_PATH: 'missing.graphql' })).toThrow(ConfigError);
  });

  it('reads a config file and lets environment variables override it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-config-'));
    const file = join(dir, 'gateway.yaml');
    writeFileSync(file, 'port: 5000\nlogLevel: debug\nsubgraphs:\n  accounts-v2:\n    url: http://accounts:4001/graphql\n    timeoutMs: 250\n');
    const config = loadConfig({ GATEWAY_CONFIG: file, LOG_LEVEL: 'warn' });
    expect(config.port).toBe(5000);
    expect(config.logLevel).toBe('warn');
    expect(subgraphOverride(config, 'accounts-v2')).toEqual({ url: 'http://accounts:4001/graphql', timeoutMs: 250 });

    const fromEnv = loadConfig({ GATEWAY_CONFIG: file, SUBGRAPH_ACCOUNTS_V2_TIMEOUT_MS: '900' });
    expect(subgraphOverride(fromEnv, 'accounts-v2').timeoutMs).toBe(900);
  });

  it('limits subgraph answers globally and per subgraph, from the file or the environment', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-config-'));
    const file = join(dir, 'gateway.yaml');
    writeFileSync(file, 'subgraphMaxResponseBytes: 2000000\nsubgraphs:\n  reviews:\n    maxResponseBytes: 500000\n');
    const config = loadConfig({ GATEWAY_CONFIG: file });
    expect(config.subgraphMaxResponseBytes).toBe(2_000_000);
    expect(subgraphOverride(config, 'reviews').maxResponseBytes).toBe(500_000);
    const fromEnv = loadConfig({ GATEWAY_CONFIG: file, SUBGRAPH_MAX_RESPONSE_BYTES: '3000', SUBGRAPH_REVIEWS_MAX_RESPONSE_BYTES: '4000' });
    expect(fromEnv.subgraphMaxResponseBytes).toBe(3000);
    expect(subgraphOverride(fromEnv, 'reviews')).toEqual({ maxResponseBytes: 4000 });
    expect(() => loadConfig({ SUBGRAPH_REVIEWS_MAX_RESPONSE_BYTES: '0' })).toThrow(
      /subgraphs.REVIEWS.maxResponseBytes \(env SUBGRAPH_REVIEWS_MAX_RESPONSE_BYTES\)/,
    );
    // One string must hold the answer for JSON.parse.
    expect(() => loadConfig({ SUBGRAPH_MAX_RESPONSE_BYTES: String(2 ** 30) })).toThrow(/subgraphMaxResponseBytes \(env SUBGRAPH_MAX_RESPONSE_BYTES\)/);
  });

  it('refuses subgraph timeouts that Node timers cannot hold (they would fire at once)', () => {
    expect(loadConfig({ SUBGRAPH_TIMEOUT_MS: '2147483647' }).subgraphTimeoutMs).toBe(2_147_483_647);
    expect(() => loadConfig({ SUBGRAPH_TIMEOUT_MS: '2147483648' })).toThrow(/subgraphTimeoutMs \(env SUBGRAPH_TIMEOUT_MS\)/);
    expect(() => loadConfig({ SUBGRAPH_ACCOUNTS_TIMEOUT_MS: '3000000000' })).toThrow(/subgraphs.ACCOUNTS.timeoutMs \(env SUBGRAPH_ACCOUNTS_TIMEOUT_MS\)/);
  });

  it('rejects unknown keys in the config file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-config-'));
    const file = join(dir, 'gateway.json');
    writeFileSync(file, JSON.stringify({ prot: 4000 }));
    expect(() => loadConfig({ GATEWAY_CONFIG: file })).toThrow(/prot/);
  });
});

describe('authentication configuration', () => {
  it('an HMAC secret needs an HS algorithm and the other way round', () => {
    expect(() => loadConfig({ JWT_SECRET: 's'.repeat(40) })).toThrow(/JWT_SECRET.*HS256/);
    expect(() => loadConfig({ JWT_ALGORITHMS: 'HS256' })).toThrow(/JWT_SECRET is not set/);
    expect(loadConfig({ JWT_SECRET: 's'.repeat(40), JWT_ALGORITHM: 'HS256' }).jwtAlgorithms).toEqual(['HS256']);
    expect(() => loadConfig({ JWT_SECRET: 'short', JWT_ALGORITHM: 'HS256' })).toThrow(/jwtSecret \(env JWT_SECRET\)/);
  });

  it('never accepts "none" and defaults to asymmetric algorithms', () => {
    expect(() => loadConfig({ JWT_ALGORITHMS: 'none' })).toThrow(/jwtAlgorithms.0 \(env JWT_ALGORITHMS\)/);
    expect(loadConfig({}).jwtAlgorithms).toEqual(['RS256', 'ES256', 'EdDSA']);
  });

  it('maps claims from the environment (Keycloak style)', () => {
    const config = loadConfig({ JWT_CLAIM_ROLES: 'realm_access.roles', JWT_CLAIM_PERMISSIONS: 'scope' });
    expect(config.claims).toMatchObject({ roles: 'realm_access.roles', permissions: 'scope', tenantId: 'tenant_id' });
  });

  it('refuses development keys in production', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-devkeys-'));
    const files = await ensureDevKeys(dir);
    expect(loadConfig({ JWT_PUBLIC_KEY_FILE: files.tokenPublicKey }).jwtPublicKeyFile).toBe(files.tokenPublicKey);
    expect(() => loadConfig({ NODE_ENV: 'production', JWT_PUBLIC_KEY_FILE: files.tokenPublicKey })).toThrow(/development keys/);
    expect(() => loadConfig({ NODE_ENV: 'production', GATEWAY_SIGNING_KEY_FILE: files.gatewaySigningKey })).toThrow(/development keys/);
  });

  it('refuses to start when /graphql requires auth and nothing can authenticate', async () => {
    await expect(buildGateway(loadConfig({ LOG_LEVEL: 'silent' }), { logger: false })).rejects.toThrow(/no key source/);
    const gateway = await buildGateway(loadConfig({ AUTH_GRAPHQL: 'optional' }), { logger: false });
    await gateway.app.close();
  });
});

describe('claim mapping', () => {
  const mapping = loadConfig({}).claims;

  it('reads the seeds\' payload shape', () => {
    const principal = principalFromClaims(
      {
        sub: 'u1',
        iat: 100,
        roles: ['admin'],
        permissions: ['read:tasks'],
        tenant_id: 't1',
        tenant_access: [{ tenant_id: 't1', role: 'admin' }, { tenant_id: 't2', role: 'viewer' }],
        subscription: { tier: 'pro', status: 'active', valid_until: '2030-01-01T00:00:00Z' },
        demo: true,
      },
      mapping,
    );
    expect(principal).toMatchObject({
      kind: 'user',
      id: 'u1',
      tenantId: 't1',
      roles: ['admin'],
      permissions: ['read:tasks'],
      tenantAccess: [{ tenantId: 't1', role: 'admin' }, { tenantId: 't2', role: 'viewer' }],
      subscription: { tier: 'pro', status: 'active', validUntil: 1893456000 },
      demo: true,
      issuedAt: 100,
    });
  });

  it('reads Keycloak, Auth0 and OAuth scope styles', () => {
    const keycloak = { ...mapping, roles: 'realm_access.roles', permissions: 'scope' };
    expect(principalFromClaims({ sub: 'k', realm_access: { roles: ['a', 'b'] }, scope: 'read:x write:y' }, keycloak)).toMatchObject({
      roles: ['a', 'b'],
      permissions: ['read:x', 'write:y'],
    });
    const auth0 = { ...mapping, roles: 'https://example.com/roles', tenantId: 'https://example.com/tenant' };
    expect(principalFromClaims({ sub: 'a', 'https://example.com/roles': ['ops'], 'https://example.com/tenant': 'acme' }, auth0)).toMatchObject({
      roles: ['ops'],
      tenantId: 'acme',
    });
  });
});

describe('REST route configuration', () => {
  it('the example config (the seeds\' route table) is valid', () => {
    const config = loadConfig({ GATEWAY_CONFIG: 'config/gateway.example.yaml' });
    expect(config.routes.map((route) => route.prefix)).toContain('/api/v1/integrations/slack');
    expect(config.services.orders!.loadBalancing).toBe('weighted');
    expect(config.routes.find((route) => route.prefix === '/api/v1/users')!.auth).toBe('authenticated');
  });

  it('<NAME>_SERVICE_URL creates /api/v1/<name> routes and overrides configured upstreams', () => {
    const config = loadConfig({
      USERS_SERVICE_URL: 'http://localhost:8001',
      AI_INSIGHTS_SERVICE_URL: 'http://localhost:8002,http://localhost:8003',
    });
    expect(config.routes.map((route) => [route.prefix, route.service])).toEqual([
      ['/api/v1/users', 'users'],
      ['/api/v1/ai-insights', 'ai-insights'],
    ]);
    expect(config.services['ai-insights']!.upstreams.map((u) => u.url)).toEqual(['http://localhost:8002', 'http://localhost:8003']);

    const overridden = loadConfig({ GATEWAY_CONFIG: 'config/gateway.example.yaml', USERS_SERVICE_URL: 'http://127.0.0.1:9000' });
    expect(overridden.services.users!.upstreams).toEqual([{ url: 'http://127.0.0.1:9000', weight: 1 }]);
    // The file already routes the users service: no extra /api/v1/users route is invented.
    expect(overridden.routes.filter((route) => route.service === 'users').map((r) => r.prefix)).toEqual(['/api/v1/auth', '/api/v1/users', '/api/v1/roles']);
  });

  it('names the bad route field', () => {
    expect(() => loadConfig({ USERS_SERVICE_URL: 'ftp://x' })).toThrow(/services.users.upstreams.0.url \(env USERS_SERVICE_URL/);
    const dir = mkdtempSync(join(tmpdir(), 'gw-routes-'));
    const file = join(dir, 'gateway.yaml');
    writeFileSync(file, 'routes:\n  - { prefix: /api/v1/x, service: nowhere }\n');
    expect(() => loadConfig({ GATEWAY_CONFIG: file })).toThrow(/routes.0.service: unknown service "nowhere"/);
    writeFileSync(file, 'services: { a: { upstreams: [{ url: "http://a" }] } }\nroutes:\n  - { prefix: "/api/v1/x/*", service: a }\n');
    expect(() => loadConfig({ GATEWAY_CONFIG: file })).toThrow(/routes.0.prefix/);
  });
});
