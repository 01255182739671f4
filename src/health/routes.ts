import type { FastifyInstance } from 'fastify';
import type { SupergraphStatus } from '../graphql/supergraph-file.js';
import type { RedisReadiness } from '../stores/redis-availability.js';

interface HealthOptions {
  supergraphStatus: () => SupergraphStatus;
  isShuttingDown: () => boolean;
  /** Shared dependencies by name (`redis`), when configured. */
  dependencies: Readonly<Record<string, () => RedisReadiness>>;
}

/**
 * Liveness answers while the process serves; readiness only once it can do useful work. A shared
 * dependency that is down makes the instance `degraded`: still ready while every feature using it
 * fails open (all instances share the dependency, so pulling them all would turn a degraded
 * service into none), not ready when a feature's policy is to refuse (fail-closed).
 */
export function registerHealthRoutes(app: FastifyInstance, { supergraphStatus, isShuttingDown, dependencies }: HealthOptions): void {
  app.get('/health', async () => ({ status: 'ok', timestamp: new Date().toISOString() }));

  app.get('/health/ready', async (_request, reply) => {
    const supergraph = supergraphStatus();
    if (isShuttingDown()) return reply.code(503).send({ status: 'unavailable', reason: 'shutting down' });
    if (supergraph.state !== 'ready') {
      return reply.code(503).send({ status: 'unavailable', reason: supergraph.reason });
    }
    const states = Object.entries(dependencies).map(([name, readiness]) => [name, readiness()] as const);
    const connecting = states.find(([, state]) => state.status === 'connecting');
    if (connecting) return reply.code(503).send({ status: 'unavailable', reason: `${connecting[0]} not connected yet` });

    const down = states.filter(([, state]) => state.status === 'down');
    const refusing = down.filter(([, state]) => state.status === 'down' && state.failsReadiness).map(([name]) => name);
    return reply.code(refusing.length > 0 ? 503 : 200).send({
      status: down.length > 0 ? 'degraded' : 'ready',
      ...(refusing.length > 0 ? { reason: `${refusing.join(', ')} down and a fail-closed policy refuses requests` } : {}),
      supergraph: { hash: supergraph.hash, loadedAt: supergraph.loadedAt },
      dependencies: Object.fromEntries(states),
    });
  });
}
