import type { FastifyInstance } from 'fastify';
import type { SupergraphStatus } from '../graphql/supergraph-file.js';

interface HealthOptions {
  supergraphStatus: () => SupergraphStatus;
  isShuttingDown: () => boolean;
  /** False until a configured Redis has connected once (later outages do not unready the gateway). */
  redisConnected: () => boolean;
}

/** Liveness answers while the process serves; readiness only once it can do useful work. */
export function registerHealthRoutes(app: FastifyInstance, { supergraphStatus, isShuttingDown, redisConnected }: HealthOptions): void {
  app.get('/health', async () => ({ status: 'ok', timestamp: new Date().toISOString() }));

  app.get('/health/ready', async (_request, reply) => {
    const supergraph = supergraphStatus();
    if (isShuttingDown()) return reply.code(503).send({ status: 'unavailable', reason: 'shutting down' });
    if (supergraph.state !== 'ready') {
      return reply.code(503).send({ status: 'unavailable', reason: supergraph.reason });
    }
    if (!redisConnected()) return reply.code(503).send({ status: 'unavailable', reason: 'redis not connected yet' });
    return { status: 'ready', supergraph: { hash: supergraph.hash, loadedAt: supergraph.loadedAt } };
  });
}
