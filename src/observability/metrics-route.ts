import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { GatewayError } from '../errors.js';
import type { GatewayMetrics } from './metrics.js';

/**
 * `GET /metrics` in Prometheus text format. With `METRICS_TOKEN` set, scrapers must send
 * `Authorization: Bearer <token>`. `refresh` callbacks set gauges that mirror live state
 * (upstream health, breakers) just before each scrape.
 */
export function registerMetricsRoute(
  app: FastifyInstance,
  metrics: GatewayMetrics,
  token: string | undefined,
  refresh: readonly (() => void)[],
): void {
  const expected = token ? Buffer.from(`Bearer ${token}`) : null;
  app.get('/metrics', async (request, reply) => {
    if (expected) {
      const sent = Buffer.from(request.headers.authorization ?? '');
      if (sent.length !== expected.length || !timingSafeEqual(sent, expected)) throw new GatewayError('UNAUTHENTICATED');
    }
    for (const update of refresh) update();
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
}
