import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { anonymousPrincipal, type Principal } from '../auth/principal.js';
import type { GatewayConfig } from '../config/schema.js';
import { OPERATIONAL_RATE_LIMIT, type RoutePolicy } from '../pipeline/access.js';
import type { GatewayMetrics } from './metrics.js';

/**
 * Who may scrape `/metrics` (it names upstream URLs, breaker states and operation names):
 * `METRICS_AUTH`, by default `authenticated` in production or when `METRICS_TOKEN` is set. An
 * authenticated caller needs `METRICS_PERMISSIONS` (`metrics:read`); the scrape token stands in for a
 * caller holding them, so Prometheus can use its plain bearer-token setting.
 */
export function metricsPolicy(
  config: Pick<GatewayConfig, 'nodeEnv' | 'metricsAuth' | 'metricsPermissions' | 'metricsToken'>,
): RoutePolicy {
  const auth = config.metricsAuth ?? (config.nodeEnv === 'production' || config.metricsToken ? 'authenticated' : 'public');
  if (auth === 'public') return { auth: 'public' };
  return {
    auth: 'authenticated',
    permissions: config.metricsPermissions,
    ...(config.metricsToken ? { routeCredential: scrapeToken(config.metricsToken, config.metricsPermissions) } : {}),
  };
}

/**
 * `Authorization: Bearer <METRICS_TOKEN>` as a machine caller of its own (rate limited as an API
 * client, named in the request log). Any other Authorization header goes to the usual token checks,
 * so a wrong guess counts as a failed authentication like any other.
 */
function scrapeToken(token: string, permissions: readonly string[]): (request: FastifyRequest) => Principal | null {
  const expected = Buffer.from(`Bearer ${token}`);
  const scraper: Principal = Object.freeze({ ...anonymousPrincipal(), kind: 'api-client', id: 'metrics-token', permissions: [...permissions] });
  return (request) => {
    const sent = Buffer.from(request.headers.authorization ?? '');
    return sent.length === expected.length && timingSafeEqual(sent, expected) ? scraper : null;
  };
}

/**
 * `GET /metrics` in Prometheus text format, behind the pipeline (auth, policy, rate limits) like any
 * route. `refresh` callbacks set gauges that mirror live state (upstream health, breakers) just
 * before each scrape.
 */
export function registerMetricsRoute(app: FastifyInstance, metrics: GatewayMetrics, policy: RoutePolicy, refresh: readonly (() => void)[]): void {
  app.get('/metrics', { config: { policy, rateLimit: OPERATIONAL_RATE_LIMIT } }, async (_request, reply) => {
    for (const update of refresh) update();
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
}
