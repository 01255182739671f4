import Fastify, { type FastifyInstance } from 'fastify';
import { DEMO_USERS } from '../../subgraphs/shared/demo-users.js';

/**
 * A small legacy REST service, as the gateway finds them in the wild: it trusts the identity headers
 * in front of it (`x-tenant-id`, `x-user-id`) and knows nothing about GraphQL or tokens.
 */
interface Order {
  id: string;
  userId: string;
  total: number;
}

/** Id and name only: a legacy service that never had e-mail addresses. */
const USERS = Object.fromEntries(
  Object.entries(DEMO_USERS).map(([tenant, users]) => [tenant, users.map(({ id, name }) => ({ id, name }))]),
);

export function buildLegacyRestService(): FastifyInstance {
  const app = Fastify({ logger: false });
  const orders: Record<string, Order[]> = {
    acme: [{ id: 'r-acme-1', userId: 'u-acme-1', total: 4999 }],
    globex: [{ id: 'r-globex-1', userId: 'u-globex-1', total: 99600 }],
  };
  const tenantOf = (headers: Record<string, unknown>) => (typeof headers['x-tenant-id'] === 'string' ? headers['x-tenant-id'] : null);

  app.addHook('onRequest', async (request, reply) => {
    if (request.url === '/health') return;
    if (!tenantOf(request.headers)) {
      return reply.code(400).send({ error: 'missing x-tenant-id' });
    }
  });
  app.get('/health', async () => ({ status: 'ok' }));
  app.get('/api/v1/users', async (request) => USERS[tenantOf(request.headers)!] ?? []);
  app.get<{ Params: { id: string } }>('/api/v1/users/:id', async (request, reply) => {
    const user = (USERS[tenantOf(request.headers)!] ?? []).find((u) => u.id === request.params.id);
    return user ?? reply.code(404).send({ error: 'not found' });
  });
  app.get('/api/v1/orders', async (request) => orders[tenantOf(request.headers)!] ?? []);
  app.post<{ Body: { total?: number } }>('/api/v1/orders', async (request, reply) => {
    const tenant = tenantOf(request.headers)!;
    const list = (orders[tenant] ??= []);
    const order = {
      id: `r-${tenant}-${list.length + 1}`,
      userId: String(request.headers['x-user-id'] ?? 'unknown'),
      total: Number(request.body?.total ?? 0),
    };
    list.push(order);
    return reply.code(201).header('location', `/api/v1/orders/${order.id}`).send(order);
  });
  app.get('/api/v1/whoami', async (request) => ({
    userId: request.headers['x-user-id'] ?? null,
    tenantId: request.headers['x-tenant-id'] ?? null,
    roles: request.headers['x-user-roles'] ?? null,
    requestId: request.headers['x-request-id'] ?? null,
  }));
  return app;
}
