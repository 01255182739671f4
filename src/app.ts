import { readFileSync } from 'node:fs';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyServerOptions } from 'fastify';
import type { RedisClient } from './stores/redis.js';
import { ApiKeyChain, ConfiguredApiKeys, RedisApiKeys, type ApiKeyStore } from './auth/api-keys.js';
import { Authenticator } from './auth/authenticator.js';
import { ContextSigner } from './auth/context-signer.js';
import { loadKeySources } from './auth/key-sources.js';
import { TenantGuard } from './auth/tenant-guard.js';
import { TokenVerifier } from './auth/token-verifier.js';
import { ConfigError } from './config/load.js';
import type { GatewayConfig } from './config/schema.js';
import { GatewayError, PROBLEM_CONTENT_TYPE, problemDetails } from './errors.js';
import { registerGraphQL, type GraphQLEndpoint } from './graphql/endpoint.js';
import { registerHealthRoutes } from './health/routes.js';
import { registerServicesHealth } from './health/services.js';
import { createMetrics, type GatewayMetrics } from './observability/metrics.js';
import { OPERATIONAL_RATE_LIMIT, accessControl, operationalPolicy } from './pipeline/access.js';
import { installCallerContext } from './pipeline/caller-context.js';
import { MemoryEventBus, type EventBus } from './events/bus.js';
import { RedisEventBus } from './events/redis-bus.js';
import { registerEventStreams } from './events/sse.js';
import { metricsPolicy, registerMetricsRoute } from './observability/metrics-route.js';
import { deferredChildLogger } from './observability/request-logger.js';
import { installTracing } from './observability/tracing.js';
import { LogDestination } from './observability/log-destination.js';
import { GatewayLogController, installRequestMetrics } from './observability/request-log.js';
import { installProblemErrors } from './pipeline/error-handler.js';
import { installCors } from './pipeline/cors.js';
import { installDrain } from './pipeline/drain.js';
import { guardPath } from './pipeline/path-guard.js';
import { securityHeaders, setSecurityHeaders } from './pipeline/security-headers.js';
import { refuseRequestsBehindStreams } from './events/stream-sockets.js';
import { installStages, type Stage } from './pipeline/stages.js';
import { rateLimit } from './pipeline/rate-limit.js';
import { AuthFailureGuard } from './ratelimit/auth-failures.js';
import { RateLimiter } from './ratelimit/limiter.js';
import { RedisRateLimitStore } from './ratelimit/redis-store.js';
import { ResilientRateLimitStore } from './ratelimit/resilient-store.js';
import { MemoryRateLimitStore } from './ratelimit/store.js';
import { echoRequestId, requestIdFor } from './pipeline/request-id.js';
import { inboundServerOptions } from './rest/inbound-limits.js';
import { clientErrorAnswers } from './pipeline/client-error-answers.js';
import { registerRestRoutes, type RestUpstreams } from './rest/proxy.js';
import { createRedis } from './stores/redis.js';
import { RedisAvailability } from './stores/redis-availability.js';
import { RedisKeyTracking } from './stores/redis-tracking.js';
import { MemoryTenantFlagStore, RedisTenantFlagStore, TENANT_FLAG_KEY_PREFIX, type TenantFlagStore } from './stores/tenant-flags.js';

/** package.json sits one level up from src/ (tsx) and two from dist/src/ (the build). */
const GATEWAY_VERSION = ((): string => {
  for (const relative of ['../package.json', '../../package.json']) {
    try {
      return (JSON.parse(readFileSync(new URL(relative, import.meta.url), 'utf8')) as { version: string }).version;
    } catch {
      // try the next location
    }
  }
  return 'unknown';
})();

export interface BuildOptions {
  /** Fastify logger options; defaults to JSON logs at the configured level. */
  logger?: FastifyServerOptions['logger'];
  /** A Redis client to use instead of connecting to `REDIS_URL` (tests, embedding). Not closed by the gateway. */
  redis?: RedisClient;
}

export interface Gateway {
  app: FastifyInstance;
  graphql: GraphQLEndpoint;
  rest: RestUpstreams;
  events: EventBus;
  metrics: GatewayMetrics;
  tenantFlags: TenantFlagStore;
  /**
   * Graceful shutdown: readiness turns 503, requests already admitted complete (this instance keeps
   * serving its JWKS to the subgraphs they call), new ones get 503 SHUTTING_DOWN; then the app closes.
   * Everything is bounded by SHUTDOWN_TIMEOUT_MS.
   */
  shutdown(): Promise<void>;
}

/**
 * Builds the gateway. The pipeline is registered here, in request order:
 * request id → security headers → drain → path guard → caller context (identity headers stripped)
 * → CORS → auth → tenant checks → route policy → rate limits → destinations (GraphQL, REST
 * passthrough, event streams).
 */
export async function buildGateway(config: GatewayConfig, options: BuildOptions = {}): Promise<Gateway> {
  // helmet's set (a JSON API serves no HTML, so no CSP to maintain), on every answer: refusals included.
  const helmetHeaders = await securityHeaders({ contentSecurityPolicy: false });
  const withSecurityHeaders = setSecurityHeaders(helmetHeaders);
  const logDestination = options.logger === undefined ? new LogDestination() : null;
  const metrics = createMetrics();
  const app = Fastify({
    logger: logDestination
      ? {
          level: config.logLevel,
          redact: { paths: ['req.headers.authorization', 'req.headers["x-api-key"]', 'req.headers.cookie'], remove: true },
          stream: logDestination,
        }
      : options.logger,
    // The per-request child logger is made only when the request logs more than its completion line.
    childLoggerFactory: deferredChildLogger,
    genReqId: requestIdFor,
    requestIdHeader: false,
    logController: new GatewayLogController(),
    bodyLimit: config.bodyLimitBytes,
    // One TRUST_PROXY, parsed and validated with the configuration: request.ip / ips / host / protocol
    // follow it, and so does what the REST proxy forwards.
    trustProxy: config.trustProxy === true || config.trustProxy === false ? config.trustProxy : [...config.trustProxy],
    // Client-side timeouts (REQUEST_TIMEOUT_MS) and problem+json answers to what Node refuses itself.
    ...inboundServerOptions(config),
    clientErrorHandler: clientErrorAnswers(helmetHeaders, metrics.clientErrors),
    // Malformed URLs (bad percent-encoding) are refused by Fastify before any hook runs.
    frameworkErrors: (error, request, reply) => {
      const gatewayError = error.code === 'FST_ERR_BAD_URL' ? new GatewayError('PATH_NOT_ALLOWED') : GatewayError.from(error);
      withSecurityHeaders(request, reply as FastifyReply);
      void (reply as FastifyReply).code(gatewayError.status).type(PROBLEM_CONTENT_TYPE).send(problemDetails(gatewayError, request.id));
    },
  });

  const wantsRedis = config.redisUrl !== undefined || config.redisSentinels.length > 0 || config.redisClusterNodes.length > 0;
  const redis =
    options.redis ??
    (wantsRedis
      ? createRedis({
          url: config.redisUrl,
          sentinels: config.redisSentinels,
          sentinelName: config.redisSentinelName,
          clusterNodes: config.redisClusterNodes,
        })
      : null);
  if (redis && !options.redis) app.addHook('onClose', async () => void (await redis.quit().catch(() => redis.disconnect())));
  // Every Redis-backed feature asks through this: fail fast while Redis is unreachable, then its own
  // policy (README, "Failure behaviour"); the outage is logged and counted once, and shown in readiness.
  const redisAvailability = redis
    ? RedisAvailability.attach(redis, { logger: app.log, registry: metrics.registry, lastKnownSeconds: config.redisLastKnownSeconds })
    : null;
  if (redisAvailability) {
    app.addHook('onClose', async () => redisAvailability.detach());
    redisAvailability.declare('tenantFlags', config.tenantFlagsOnStoreFailure);
    redisAvailability.declare('tokenFreshness', config.tokenFreshnessOnStoreFailure);
  }
  // Tenant flags are kept in process while Redis announces every write to them (client-side caching).
  const flagTracking = redis ? RedisKeyTracking.start(redis, TENANT_FLAG_KEY_PREFIX, app.log) : null;
  if (flagTracking) app.addHook('onClose', async () => flagTracking.close());
  const tenantFlags: TenantFlagStore =
    redis && redisAvailability ? new RedisTenantFlagStore(redis, redisAvailability, flagTracking) : new MemoryTenantFlagStore();
  const apiKeyStores: ApiKeyStore[] = [new ConfiguredApiKeys(config.apiKeys)];
  if (redis && redisAvailability) apiKeyStores.push(new RedisApiKeys(redis, redisAvailability));

  const keySources = await loadKeySources(config);
  if (!keySources && config.apiKeys.length === 0 && !redis && config.authGraphql === 'required') {
    throw new ConfigError(
      'Invalid configuration: /graphql requires authentication (AUTH_GRAPHQL=required) but no key source is set: ' +
        'configure JWT_JWKS_URL, JWT_PUBLIC_KEY(_FILE) or JWT_SECRET, API keys, or AUTH_GRAPHQL=optional',
    );
  }
  if (keySources && (!config.jwtIssuer || !config.jwtAudience)) {
    app.log.warn('JWT_ISSUER and/or JWT_AUDIENCE are not set: any token signed by the configured keys is accepted (set both in production)');
  }
  const verifier = keySources
    ? new TokenVerifier(keySources, config, { hit: () => metrics.authCacheHits.inc(), miss: () => metrics.authCacheMisses.inc() })
    : null;
  const signer = await ContextSigner.create(config);
  if (signer.ephemeral && config.nodeEnv === 'production') {
    app.log.warn('GATEWAY_SIGNING_KEY is not set: x-gateway-context is signed with a per-process key (fine for one instance only)');
  }

  const limits = config.rateLimits;
  const limitStore = !limits.enabled
    ? null
    : redis && redisAvailability
      ? new ResilientRateLimitStore(new RedisRateLimitStore(redis, redisAvailability), {
          mode: limits.onStoreFailure,
          fallbackFactor: limits.fallbackFactor,
          logger: app.log,
          onFailover: () => metrics.rateLimitStoreFailovers.inc(),
          availability: redisAvailability,
        })
      : new MemoryRateLimitStore();

  installProblemErrors(app);
  const drain = installDrain(app, config.shutdownTimeoutMs);
  // The lines batched so far (the "shutting down" one included) must survive a SIGKILL mid-drain.
  if (logDestination) {
    drain.onDrain(() => logDestination.flushSync());
    app.addHook('onClose', async () => logDestination.close());
  }
  installRequestMetrics(app, metrics);
  // The synchronous entry of the pipeline, one hook: request id and security headers on every
  // answer (the refusals below included) → refusal of a request pipelined behind an event-stream
  // request → refusal while draining → path guard → caller context (identity headers stripped, the
  // anonymous context started).
  installStages(app, [
    echoRequestId,
    withSecurityHeaders,
    ...(config.streams.length > 0 ? [refuseRequestsBehindStreams(new Set(config.streams.map((stream) => stream.path)), metrics.sseRequestsRefused)] : []),
    drain.admit,
    guardPath,
    installCallerContext(app, config.defaultTenantId ?? null),
  ]);
  await installCors(app, config);
  // OpenAPI description of every route registered from here on, browsable at /docs (assets are
  // served from the package: no CDN).
  await app.register(swagger, {
    openapi: {
      info: { title: 'federated-gateway', version: GATEWAY_VERSION, description: 'Gateway endpoints and the proxied REST route table' },
    },
  });
  // The UI, /docs/json and every static asset pass the pipeline under DOCS_AUTH (authenticated in
  // production: the description lists the whole route table): each route the plugin adds gets the policy.
  const docsPolicy = operationalPolicy(config.docsAuth, config.docsPermissions, config.nodeEnv);
  await app.register(async (docs) => {
    docs.addHook('onRoute', (route) => void (route.config = { ...route.config, policy: docsPolicy, rateLimit: OPERATIONAL_RATE_LIMIT }));
    await docs.register(swaggerUi, { routePrefix: '/docs' });
  });
  installTracing(app, config.otlpEndpoint, config.otelServiceName);
  // The pipeline proper, one hook after CORS (preflights are answered without credentials): auth →
  // tenant checks → route policy → rate limits. Each stage finishes at once when its answer is in
  // memory and waits only when it must (signature checks, JWKS, Redis).
  const accessStages: Stage[] = [
    accessControl({
      authenticator: new Authenticator(verifier, new ApiKeyChain(apiKeyStores), config.claims, config.defaultTenantId ?? null, signer),
      authFailures: limitStore ? new AuthFailureGuard(limitStore, limits.authFailures) : null,
      tenantGuard: new TenantGuard(tenantFlags, config.subscriptionGraceSeconds, {
        readOnly: config.tenantFlagsOnStoreFailure,
        tokenFreshness: config.tokenFreshnessOnStoreFailure,
      }),
      tokenFreshnessAllowMissingIat: config.tokenFreshnessAllowMissingIat,
      signer,
      metrics,
    }),
  ];
  if (limitStore) accessStages.push(rateLimit(new RateLimiter(config.rateLimits, limitStore), metrics));
  installStages(app, accessStages);

  const graphql = registerGraphQL(app, config, redis, metrics);
  const rest = await registerRestRoutes(app, config);
  registerMetricsRoute(app, metrics, metricsPolicy(config), [() => mirrorUpstreamState(rest, metrics)]);
  registerServicesHealth(app, {
    config,
    supergraph: graphql.status,
    rest,
    redis,
    signer,
    version: GATEWAY_VERSION,
    policy: operationalPolicy(config.healthServicesAuth, config.healthServicesPermissions, config.nodeEnv),
  });
  const bus = redis && redisAvailability ? new RedisEventBus(redis, config.sse.historySize, app.log, redisAvailability) : new MemoryEventBus(config.sse.historySize);
  registerEventStreams(app, config.streams, config.sse, bus, signer, metrics, drain);

  app.get('/.well-known/jwks.json', async (_request, reply) => {
    reply.header('cache-control', 'public, max-age=300');
    return signer.jwks;
  });

  // Ready once Redis has connected the first time (slots loaded, for a Cluster); a later outage
  // reports `degraded` and unreadies the instance only under a fail-closed policy.
  registerHealthRoutes(app, {
    supergraphStatus: graphql.status,
    isShuttingDown: () => drain.draining,
    dependencies: redisAvailability ? { redis: () => redisAvailability.readiness() } : {},
  });

  return {
    app,
    graphql,
    rest,
    events: bus,
    metrics,
    tenantFlags,
    shutdown: () => drain.shutdown(),
  };
}

const BREAKER_STATE = { closed: 0, 'half-open': 1, open: 2 } as const;

/** Mirrors live upstream state into gauges just before a scrape. */
function mirrorUpstreamState(rest: RestUpstreams, metrics: GatewayMetrics): void {
  for (const [service, pool] of rest.pools) {
    for (const instance of pool.instances) {
      metrics.upstreamHealth.set({ service, instance: instance.url }, pool.isAvailable(instance) ? 1 : 0);
    }
  }
  for (const [service, breaker] of rest.breakers) metrics.circuitBreakerState.set({ service }, BREAKER_STATE[breaker.state]);
}
