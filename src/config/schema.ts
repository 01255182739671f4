import { constants as bufferConstants } from 'node:buffer';
import { z } from 'zod';
import { sseSchema, streamSchema } from '../events/config-schema.js';
import { fieldRateLimitSchema } from '../graphql/field-rate-limits.js';
import { OPERATION_LIMIT_DEFAULTS, operationLimitsSchema } from '../graphql/operation-limits.js';
import { RATE_LIMIT_DEFAULTS, rateLimitSchema } from '../ratelimit/policy.js';
import { SERVICE_URL_ENV_PATTERN, routeSchema, serviceSchema, trustProxySchema } from '../rest/config-schema.js';
import { coversEveryAddress } from './trust-coverage.js';

/** Longer would make Node's timers fire at once (they take a signed 32-bit delay). */
const subgraphTimeoutMs = z.coerce.number().int().positive().max(2_147_483_647);
/** A subgraph answer is parsed from one string, so no more than the longest string V8 can hold. */
const subgraphMaxResponseBytes = z.coerce.number().int().positive().max(bufferConstants.MAX_STRING_LENGTH);

/** Per-subgraph overrides: where to reach it, how long to wait for it, how much of its answer to read. */
const subgraphOverrideSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/ }).optional(),
  timeoutMs: subgraphTimeoutMs.optional(),
  maxResponseBytes: subgraphMaxResponseBytes.optional(),
});

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** A list from the environment (`a,b,c`) or a config file (YAML list). */
const stringList = z.preprocess(
  (value) => (typeof value === 'string' ? value.split(',').map((s) => s.trim()).filter(Boolean) : value),
  z.array(z.string().min(1)),
);

/** Asymmetric algorithms by default; `none` is not even expressible. */
export const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'HS256', 'HS384', 'HS512'] as const;

/**
 * Where each piece of the principal lives in a token. A path is either a literal claim name (which
 * may contain dots, like `https://example.com/roles`) or a dot path into nested claims
 * (`realm_access.roles`). List claims may be arrays or space/comma-separated strings (`scope`).
 */
const claimMappingSchema = z.strictObject({
  subject: z.string().min(1).default('sub'),
  roles: z.string().min(1).default('roles'),
  permissions: z.string().min(1).default('permissions'),
  tenantId: z.string().min(1).default('tenant_id'),
  tenantAccess: z.string().min(1).default('tenant_access'),
  subscription: z.string().min(1).default('subscription'),
  demo: z.string().min(1).default('demo'),
  readOnly: z.string().min(1).default('read_only'),
});

/** A machine client's key, stored only as its SHA-256 hash. */
const apiKeySchema = z.strictObject({
  clientId: z.string().min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be the hex SHA-256 of the key'),
  tenantId: z.string().min(1),
  roles: z.array(z.string()).default([]),
  permissions: z.array(z.string()).default([]),
  tier: z.string().min(1).default('standard'),
});

/**
 * The top-level REST settings: the passthrough's services and routes, the inbound limits, CORS, and
 * who is believed about the client. One group, so that the example configuration and the Kubernetes
 * manifests can be checked against it (test/unit/config-examples.test.ts) rather than a copied list.
 */
export const REST_SETTINGS = {
  bodyLimitBytes: z.coerce.number().int().positive().default(1_048_576),
  /** The whole request, headers and body, must have arrived within this (Node `requestTimeout`) → 408. */
  requestTimeoutMs: z.coerce.number().int().positive().default(30_000),
  /** Longest pause between two chunks of a streamed REST request body (nginx `client_body_timeout`) → 408. */
  requestBodyTimeoutMs: z.coerce.number().int().positive().default(10_000),
  services: z.record(z.string().regex(/^[a-z0-9][a-z0-9-]*$/), serviceSchema).default({}),
  routes: z.array(routeSchema).default([]),
  /** Origins allowed by CORS (`*` for any); empty = no CORS headers. */
  corsOrigins: stringList.default([]),
  corsCredentials: z.stringbool().or(z.boolean()).default(false),
  /** Trust X-Forwarded-* from these proxies: Fastify `trustProxy`, addresses/CIDRs (no hop counts); `true` and `/0` ranges not in production. */
  trustProxy: trustProxySchema.default(false),
};

export const configSchema = z.strictObject({
  port: z.coerce.number().int().min(0).max(65535).default(4000),
  host: z.string().min(1).default('0.0.0.0'),
  nodeEnv: z.enum(['development', 'production', 'test']).default('development'),
  logLevel: z.enum(logLevels).default('info'),
  supergraphPath: z.string().min(1).default('supergraph/supergraph.graphql'),
  /** Watch the supergraph file and hot-reload it when it changes. */
  supergraphWatch: z.stringbool().or(z.boolean()).default(true),
  /** Unset = every piece of shared state lives in memory (one instance). */
  redisUrl: z.url({ protocol: /^rediss?$/ }).optional(),
  /** Redis Sentinel: `host:port` list of sentinels (REDIS_URL then only supplies credentials and db). */
  redisSentinels: stringList.default([]),
  redisSentinelName: z.string().min(1).default('mymaster'),
  /** Redis Cluster: `host:port` of some nodes (REDIS_URL then only supplies credentials). */
  redisClusterNodes: stringList.default([]),
  // While Redis is unreachable (see README, "Failure behaviour").
  /** How long a value read from Redis (tenant flags, a verified API key, a trusted document) stands in for it; 0 = never. */
  redisLastKnownSeconds: z.coerce.number().int().min(0).max(86_400).default(300),
  /** Read-only flag with no last-known value: `open` = not read-only (the token claim still counts), `closed` = 503. */
  tenantFlagsOnStoreFailure: z.enum(['open', 'closed']).default('open'),
  /** Subscription-change instant with no last-known value: `open` = tokens not checked for staleness, `closed` = 503. */
  tokenFreshnessOnStoreFailure: z.enum(['open', 'closed']).default('open'),
  /** Tenant given to callers that carry none (single-tenant deployments, the demo). */
  defaultTenantId: z.string().min(1).max(128).optional(),
  subgraphTimeoutMs: subgraphTimeoutMs.default(10_000),
  /** Largest subgraph answer read, before and after decompression (16 MiB) → SUBGRAPH_BAD_RESPONSE. */
  subgraphMaxResponseBytes: subgraphMaxResponseBytes.default(16_777_216),
  shutdownTimeoutMs: z.coerce.number().int().positive().default(10_000),
  subgraphs: z.record(z.string().regex(/^[A-Za-z0-9_-]+$/), subgraphOverrideSchema).default({}),

  // Authentication (see README, "Authentication").
  jwtJwksUrl: z.url({ protocol: /^https?$/ }).optional(),
  /** PEM public key (SPKI) or a JSON Web Key, inline. */
  jwtPublicKey: z.string().min(1).optional(),
  jwtPublicKeyFile: z.string().min(1).optional(),
  jwtSecret: z.string().min(32, 'must be at least 32 characters').optional(),
  jwtAlgorithms: z.preprocess(
    (value) => (typeof value === 'string' ? value.split(',').map((s) => s.trim()).filter(Boolean) : value),
    z.array(z.enum(JWT_ALGORITHMS)).min(1),
  ).default(['RS256', 'ES256', 'EdDSA']),
  /** After a JWKS fetch, no other fetch for this long (a flood of unknown `kid`s cannot hammer the IdP). */
  jwtJwksCooldownSeconds: z.coerce.number().min(0).default(30),
  jwtIssuer: z.string().min(1).optional(),
  jwtAudience: z.string().min(1).optional(),
  jwtClockToleranceSeconds: z.coerce.number().int().min(0).max(300).default(30),
  jwtRequiredClaims: stringList.default(['sub', 'exp']),
  claims: claimMappingSchema.default(claimMappingSchema.parse({})),
  /** `required`: /graphql refuses anonymous callers; `optional`: admits them (field directives still apply). */
  authGraphql: z.enum(['required', 'optional']).default('required'),
  /** Callers of /graphql need one of these roles (empty: no role needed). */
  authGraphqlRoles: stringList.default([]),
  /** Callers of /graphql need all of these permissions. */
  authGraphqlPermissions: stringList.default([]),
  apiKeys: z.array(apiKeySchema).default([]),
  tokenCacheSize: z.coerce.number().int().min(0).default(10_000),
  /** How long an expired subscription keeps working before calls are refused. */
  subscriptionGraceSeconds: z.coerce.number().int().min(0).default(7 * 24 * 3600),
  /** Deployment opt-out: tokens without `iat` pass a tenant's freshness rule instead of being TOKEN_STALE. */
  tokenFreshnessAllowMissingIat: z.stringbool().or(z.boolean()).default(false),
  /** PKCS#8 PEM private key (Ed25519 or EC P-256) the gateway signs `x-gateway-context` with. */
  gatewaySigningKey: z.string().min(1).optional(),
  gatewaySigningKeyFile: z.string().min(1).optional(),

  // REST passthrough (see README, "REST routes") and the inbound limits it shares with /graphql.
  ...REST_SETTINGS,

  // Rate limits (see README, "Rate limits").
  rateLimits: rateLimitSchema.default(RATE_LIMIT_DEFAULTS),
  /** Field limits by `Type.field`, on top of (and overriding) `@rateLimit` in the supergraph. */
  fieldRateLimits: z.record(z.string().regex(/^\w+\.\w+$/), fieldRateLimitSchema).default({}),
  // GraphQL operation limits (see README, "Operation limits").
  operationLimits: operationLimitsSchema.default(OPERATION_LIMIT_DEFAULTS),
  /** `allow-list`: only operations in the trusted documents manifest (or Redis) run. */
  trustedDocuments: z.enum(['off', 'allow-list']).default('off'),
  trustedDocumentsManifest: z.string().min(1).optional(),
  /** Automatic Persisted Queries (shared through Redis when configured). */
  persistedQueries: z.stringbool().or(z.boolean()).default(true),
  // Event streams (see README, "Event streams").
  streams: z.array(streamSchema).default([streamSchema.parse({ path: '/api/v1/alerts/stream', channel: 'alerts' })]),
  sse: sseSchema.default(sseSchema.parse({})),
  /** OTLP/HTTP collector base URL (e.g. http://otel-collector:4318); unset = no tracing SDK at all. */
  otlpEndpoint: z.url({ protocol: /^https?$/ }).optional(),
  otelServiceName: z.string().min(1).default('federated-gateway'),
  /** How long one `/health/services` report is reused before the services are asked again. */
  healthServicesCacheSeconds: z.coerce.number().min(0).default(30),
  /** `Authorization: Bearer <token>` a scraper may use on `/metrics` (without a JWT or API key). */
  metricsToken: z.string().min(16).optional(),
  // Operational routes: who may read them. Unset = `authenticated` in production, `public` elsewhere
  // (for /metrics also `authenticated` whenever METRICS_TOKEN is set).
  metricsAuth: z.enum(['public', 'authenticated']).optional(),
  /** Permissions (all of) a caller needs for `/metrics`; METRICS_TOKEN stands in for them. */
  metricsPermissions: stringList.default(['metrics:read']),
  docsAuth: z.enum(['public', 'authenticated']).optional(),
  docsPermissions: stringList.default([]),
  healthServicesAuth: z.enum(['public', 'authenticated']).optional(),
  healthServicesPermissions: stringList.default([]),
  /** GraphiQL for browsers opening /graphql; default: on in development only. */
  graphqlIde: z.stringbool().or(z.boolean()).optional(),
  /** Introspection and "Did you mean…" suggestions; default: on except in production. */
  graphqlIntrospection: z.stringbool().or(z.boolean()).optional(),
}).superRefine((config, context) => {
  config.routes.forEach((route, index) => {
    if (!config.services[route.service]) {
      context.addIssue({
        code: 'custom',
        path: ['routes', index, 'service'],
        message: `unknown service "${route.service}" (define it under services or set ${route.service.toUpperCase().replace(/-/g, '_')}_SERVICE_URL)`,
      });
    }
  });
  if (config.metricsAuth === 'public' && config.metricsToken) {
    context.addIssue({ code: 'custom', path: ['metricsAuth'], message: 'is public, so the METRICS_TOKEN that is set would protect nothing; use authenticated or unset the token' });
  }
  if (config.nodeEnv === 'production') {
    const everyPeer = trustsEveryPeer(config.trustProxy);
    if (everyPeer) context.addIssue({ code: 'custom', path: ['trustProxy'], message: trustEveryPeerMessage(everyPeer) });
  }
  const prefixes = new Set<string>();
  config.routes.forEach((route, index) => {
    if (prefixes.has(route.prefix)) context.addIssue({ code: 'custom', path: ['routes', index, 'prefix'], message: `duplicate prefix ${route.prefix}` });
    prefixes.add(route.prefix);
  });
});

/**
 * Why `TRUST_PROXY=true` is refused in production (and warned about elsewhere): it believes
 * X-Forwarded-For from every peer, so any client picks its own `request.ip`, which keys per-IP rate
 * limits and auth-failure blocking. Hop counts are no way out: Fastify 5 ignores them (see trustProxySchema).
 */
export const TRUST_EVERY_PEER =
  'true trusts X-Forwarded-For from every peer, so any client picks its own address (and escapes per-IP rate limits and ' +
  "auth-failure blocking); set TRUST_PROXY to your proxies' addresses or CIDRs (e.g. 10.0.0.0/8) or loopback, linklocal, uniquelocal";

/**
 * The TRUST_PROXY entry that believes every peer, or null: `true`, a `/0` range (`0.0.0.0/0`,
 * `::/0`, or the netmask `0.0.0.0/0.0.0.0`), which matches every address of its family just as
 * `true` does, or (the whole list) ranges that together match every address of a family.
 */
export function trustsEveryPeer(trustProxy: boolean | readonly string[]): string | null {
  if (trustProxy === true) return 'true';
  if (trustProxy === false) return null;
  const single = trustProxy.find((entry) => /\/(0+|0\.0\.0\.0)$/.test(entry));
  if (single) return single;
  // Narrower ranges can still add up to every address of a family (0.0.0.0/1,128.0.0.0/1).
  return coversEveryAddress(trustProxy) ? trustProxy.join(',') : null;
}

/** The refusal (production) or warning (elsewhere) for an entry that trusts every peer. */
export function trustEveryPeerMessage(entry: string): string {
  if (entry === 'true') return TRUST_EVERY_PEER;
  const rest = TRUST_EVERY_PEER.slice('true trusts'.length);
  return entry.includes(',') ? `${entry} together match every address of a family, so they trust${rest}` : `${entry} matches every address, so it trusts${rest}`;
}

export type GatewayConfig = Readonly<z.output<typeof configSchema>>;
export type SubgraphOverride = z.output<typeof subgraphOverrideSchema>;
export type ClaimMapping = z.output<typeof claimMappingSchema>;
export type ApiKeyRecord = z.output<typeof apiKeySchema>;

/** Environment variable → config key. This table is the public contract documented in the README. */
export const ENV_KEYS = {
  PORT: 'port',
  HOST: 'host',
  NODE_ENV: 'nodeEnv',
  LOG_LEVEL: 'logLevel',
  SUPERGRAPH_PATH: 'supergraphPath',
  SUPERGRAPH_WATCH: 'supergraphWatch',
  REDIS_URL: 'redisUrl',
  REDIS_SENTINELS: 'redisSentinels',
  REDIS_SENTINEL_NAME: 'redisSentinelName',
  REDIS_CLUSTER_NODES: 'redisClusterNodes',
  REDIS_LAST_KNOWN_SECONDS: 'redisLastKnownSeconds',
  TENANT_FLAGS_ON_STORE_FAILURE: 'tenantFlagsOnStoreFailure',
  TOKEN_FRESHNESS_ON_STORE_FAILURE: 'tokenFreshnessOnStoreFailure',
  DEFAULT_TENANT_ID: 'defaultTenantId',
  SUBGRAPH_TIMEOUT_MS: 'subgraphTimeoutMs',
  SUBGRAPH_MAX_RESPONSE_BYTES: 'subgraphMaxResponseBytes',
  SHUTDOWN_TIMEOUT_MS: 'shutdownTimeoutMs',
  BODY_LIMIT_BYTES: 'bodyLimitBytes',
  REQUEST_TIMEOUT_MS: 'requestTimeoutMs',
  REQUEST_BODY_TIMEOUT_MS: 'requestBodyTimeoutMs',
  JWT_JWKS_URL: 'jwtJwksUrl',
  JWT_PUBLIC_KEY: 'jwtPublicKey',
  JWT_PUBLIC_KEY_FILE: 'jwtPublicKeyFile',
  JWT_SECRET: 'jwtSecret',
  JWT_ALGORITHM: 'jwtAlgorithms',
  JWT_ALGORITHMS: 'jwtAlgorithms',
  JWT_JWKS_COOLDOWN_SECONDS: 'jwtJwksCooldownSeconds',
  JWT_ISSUER: 'jwtIssuer',
  JWT_AUDIENCE: 'jwtAudience',
  JWT_CLOCK_TOLERANCE_SECONDS: 'jwtClockToleranceSeconds',
  JWT_REQUIRED_CLAIMS: 'jwtRequiredClaims',
  AUTH_GRAPHQL: 'authGraphql',
  AUTH_GRAPHQL_ROLES: 'authGraphqlRoles',
  AUTH_GRAPHQL_PERMISSIONS: 'authGraphqlPermissions',
  TOKEN_CACHE_SIZE: 'tokenCacheSize',
  SUBSCRIPTION_GRACE_SECONDS: 'subscriptionGraceSeconds',
  TOKEN_FRESHNESS_ALLOW_MISSING_IAT: 'tokenFreshnessAllowMissingIat',
  GATEWAY_SIGNING_KEY: 'gatewaySigningKey',
  GATEWAY_SIGNING_KEY_FILE: 'gatewaySigningKeyFile',
  CORS_ORIGINS: 'corsOrigins',
  CORS_CREDENTIALS: 'corsCredentials',
  TRUST_PROXY: 'trustProxy',
  GRAPHQL_INTROSPECTION: 'graphqlIntrospection',
  GRAPHQL_IDE: 'graphqlIde',
  TRUSTED_DOCUMENTS: 'trustedDocuments',
  TRUSTED_DOCUMENTS_MANIFEST: 'trustedDocumentsManifest',
  PERSISTED_QUERIES: 'persistedQueries',
  METRICS_TOKEN: 'metricsToken',
  METRICS_AUTH: 'metricsAuth',
  METRICS_PERMISSIONS: 'metricsPermissions',
  DOCS_AUTH: 'docsAuth',
  DOCS_PERMISSIONS: 'docsPermissions',
  HEALTH_SERVICES_AUTH: 'healthServicesAuth',
  HEALTH_SERVICES_PERMISSIONS: 'healthServicesPermissions',
  HEALTH_SERVICES_CACHE_SECONDS: 'healthServicesCacheSeconds',
  OTEL_EXPORTER_OTLP_ENDPOINT: 'otlpEndpoint',
  OTEL_SERVICE_NAME: 'otelServiceName',
} as const satisfies Record<string, keyof z.input<typeof configSchema>>;

/** `SUBGRAPH_<NAME>_URL` / `_TIMEOUT_MS` / `_MAX_RESPONSE_BYTES`: per-subgraph overrides from the environment. */
export const SUBGRAPH_ENV_PATTERN = /^SUBGRAPH_([A-Z0-9_]+)_(URL|TIMEOUT_MS|MAX_RESPONSE_BYTES)$/;

/** Which override each suffix of SUBGRAPH_ENV_PATTERN sets. */
export const SUBGRAPH_ENV_FIELDS = {
  URL: 'url',
  TIMEOUT_MS: 'timeoutMs',
  MAX_RESPONSE_BYTES: 'maxResponseBytes',
} as const satisfies Record<string, keyof SubgraphOverride>;

/** The file named by this variable (YAML or JSON) is read first; environment variables override it. */
export const CONFIG_FILE_ENV = 'GATEWAY_CONFIG';

/** `accounts-v2` → `ACCOUNTS_V2`: how a subgraph name appears in environment variable names. */
export function subgraphEnvName(subgraphName: string): string {
  return subgraphName.toUpperCase().replace(/-/g, '_');
}

/** Nested settings from the environment (rate limits use the seeds' names), laid over the file. */
export const NESTED_ENV: Record<string, readonly string[]> = {
  RATE_LIMIT_ENABLED: ['rateLimits', 'enabled'],
  RATE_LIMIT_REQUESTS: ['rateLimits', 'default', 'requests'],
  RATE_LIMIT_WINDOW_SECONDS: ['rateLimits', 'default', 'windowSeconds'],
  RATE_LIMIT_ON_STORE_FAILURE: ['rateLimits', 'onStoreFailure'],
  GRAPHQL_MAX_DEPTH: ['operationLimits', 'maxDepth'],
  GRAPHQL_MAX_ALIASES: ['operationLimits', 'maxAliases'],
  GRAPHQL_MAX_COST: ['operationLimits', 'maxCost'],
  GRAPHQL_MAX_TOKENS: ['operationLimits', 'maxTokens'],
  GRAPHQL_COST_IN_RESPONSE: ['operationLimits', 'costInResponse'],
  SSE_MAX_CONNECTIONS_PER_USER: ['sse', 'maxConnectionsPerUser'],
};

/** `JWT_CLAIM_ROLES=realm_access.roles` and friends: claim mapping from the environment. */
export const CLAIM_ENV_PATTERN = /^JWT_CLAIM_(SUBJECT|ROLES|PERMISSIONS|TENANT_ID|TENANT_ACCESS|SUBSCRIPTION|DEMO|READ_ONLY)$/;

export function isKnownEnvName(name: string): boolean {
  return (
    name === CONFIG_FILE_ENV ||
    name in ENV_KEYS ||
    name in NESTED_ENV ||
    SUBGRAPH_ENV_PATTERN.test(name) ||
    CLAIM_ENV_PATTERN.test(name) ||
    SERVICE_URL_ENV_PATTERN.test(name)
  );
}
