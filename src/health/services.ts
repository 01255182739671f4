import type { FastifyInstance } from 'fastify';
import type { RedisClient } from '../stores/redis.js';
import { request } from 'undici';
import type { ContextSigner } from '../auth/context-signer.js';
import { anonymousPrincipal } from '../auth/principal.js';
import { subgraphOverride } from '../config/load.js';
import type { GatewayConfig } from '../config/schema.js';
import type { SupergraphStatus } from '../graphql/supergraph-file.js';
import { OPERATIONAL_RATE_LIMIT, type RoutePolicy } from '../pipeline/access.js';
import type { RestUpstreams } from '../rest/proxy.js';

type Health = 'healthy' | 'unhealthy';

interface ServicesReport {
  status: 'healthy' | 'degraded';
  timestamp: string;
  version: string;
  services: Record<string, Health>;
}

const CHECK_TIMEOUT_MS = 2_000;

/**
 * `GET /health/services`, in the seeds' shape: every subgraph (a `{ __typename }` query signed like
 * any gateway call), every REST service (healthy while one instance may take traffic) and Redis.
 * The report is cached (`HEALTH_SERVICES_CACHE_SECONDS`, 30 s) and computed once however many callers
 * ask, so a health-check storm never reaches the services. It names every upstream and its state, so
 * it passes the pipeline under `policy` (HEALTH_SERVICES_AUTH; authenticated in production) and the
 * rate limits; liveness and readiness stay open for orchestrators.
 */
export function registerServicesHealth(
  app: FastifyInstance,
  deps: {
    config: GatewayConfig;
    supergraph: () => SupergraphStatus;
    rest: RestUpstreams;
    redis: RedisClient | null;
    signer: ContextSigner;
    version: string;
    policy: RoutePolicy;
  },
): void {
  let cached: { at: number; report: Promise<ServicesReport> } | null = null;

  const check = async (): Promise<ServicesReport> => {
    const services: Record<string, Health> = {};
    const status = deps.supergraph();
    const token = await deps.signer.sign(anonymousPrincipal());
    await Promise.all([
      ...(status.state === 'ready' ? status.subgraphs : []).map(async ({ name, url }) => {
        services[`subgraph:${name}`] = (await probeSubgraph(subgraphOverride(deps.config, name).url ?? url, token)) ? 'healthy' : 'unhealthy';
      }),
      (async () => {
        if (!deps.redis) return;
        services.redis = await deps.redis.ping().then(
          (reply) => (reply === 'PONG' ? 'healthy' : 'unhealthy'),
          () => 'unhealthy' as const,
        );
      })(),
    ]);
    for (const [name, pool] of deps.rest.pools) {
      services[`rest:${name}`] = pool.instances.some((instance) => pool.isAvailable(instance)) ? 'healthy' : 'unhealthy';
    }
    if (status.state !== 'ready') services.supergraph = 'unhealthy';
    const healthy = Object.values(services).every((health) => health === 'healthy');
    return { status: healthy ? 'healthy' : 'degraded', timestamp: new Date().toISOString(), version: deps.version, services };
  };

  app.get('/health/services', { config: { policy: deps.policy, rateLimit: OPERATIONAL_RATE_LIMIT } }, async (_request, reply) => {
    if (!cached || Date.now() - cached.at > deps.config.healthServicesCacheSeconds * 1000) cached = { at: Date.now(), report: check() };
    const report = await cached.report;
    return reply.code(report.status === 'healthy' ? 200 : 503).send(report);
  });
}

async function probeSubgraph(url: string, contextToken: string): Promise<boolean> {
  try {
    const response = await request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-gateway-context': contextToken, 'x-request-id': 'health-check' },
      body: JSON.stringify({ query: '{ __typename }' }),
      headersTimeout: CHECK_TIMEOUT_MS,
      bodyTimeout: CHECK_TIMEOUT_MS,
    });
    await response.body.dump();
    return response.statusCode === 200;
  } catch {
    return false;
  }
}
