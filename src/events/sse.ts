import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { ContextSigner } from '../auth/context-signer.js';
import { GatewayError } from '../errors.js';
import type { Drain } from '../pipeline/drain.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { EventBus, StreamEvent } from './bus.js';
import { ConnectionScope } from './connection-scope.js';
import { compareIds, parseEventId } from './event-id.js';
import { ConcurrentShares } from '../ratelimit/concurrent-shares.js';
import { callerIdentity } from '../ratelimit/limiter.js';

export const streamSchema = z.strictObject({
  /** The SSE endpoint, e.g. `/api/v1/alerts/stream`. */
  path: z.string().regex(/^(\/[A-Za-z0-9._~-]+)+$/),
  /** Redis stream key prefix: events live in `<channel>:tenant:<tenant_id>`. */
  channel: z.string().regex(/^[a-z0-9_-]+$/),
  auth: z.enum(['optional', 'authenticated']).default('authenticated'),
  roles: z.array(z.string()).default([]),
  permissions: z.array(z.string()).default([]),
  /** Roles allowed to publish through `POST <path without /stream>`. */
  publishRoles: z.array(z.string()).default(['admin', 'publisher']),
});
export type StreamConfig = z.output<typeof streamSchema>;

export const sseSchema = z.strictObject({
  historySize: z.coerce.number().int().positive().default(1_000),
  maxConnections: z.coerce.number().int().positive().default(10_000),
  maxConnectionsPerTenant: z.coerce.number().int().positive().default(1_000),
  /** Per user or API client (within a tenant; anonymous callers by IP), so one caller cannot take a tenant's slots. */
  maxConnectionsPerUser: z.coerce.number().int().positive().default(10),
  heartbeatSeconds: z.coerce.number().positive().default(15),
  retryMs: z.coerce.number().int().positive().default(3_000),
  /** A client further behind than this (bytes queued for it) is disconnected. */
  maxBufferedBytes: z.coerce.number().int().positive().default(1_048_576),
});
export type SseConfig = z.output<typeof sseSchema>;

/**
 * Server-Sent Events per tenant, through the same pipeline as every route (auth — with a short
 * ticket for browsers —, tenant checks, rate limits on connection attempts). Each connection gets
 * `retry:`, comment heartbeats and `id:`/`event:`/`data:` events of its own tenant only; with
 * `Last-Event-ID` it first receives what it missed from the bounded history, then live events,
 * de-duplicated by id. Slow consumers are disconnected instead of buffering without bound, and on
 * shutdown every stream ends so clients reconnect to another instance.
 */
export function registerEventStreams(
  app: FastifyInstance,
  streams: readonly StreamConfig[],
  sse: SseConfig,
  bus: EventBus,
  signer: ContextSigner,
  metrics: GatewayMetrics,
  drain: Pick<Drain, 'onDrain'>,
): void {
  const open = new Set<ServerResponse>();
  const slots = new ConcurrentShares<SlotScope>({
    instance: sse.maxConnections,
    tenant: sse.maxConnectionsPerTenant,
    user: sse.maxConnectionsPerUser,
  });

  // Streams never finish by themselves: end them when the drain begins (clients reconnect elsewhere)
  // and again at close for any opened since.
  const endAll = () => {
    for (const response of open) response.end();
  };
  drain.onDrain(endAll);
  app.addHook('preClose', async () => endAll());
  app.addHook('onClose', async () => bus.close());

  app.post(
    '/api/v1/streams/ticket',
    { config: { policy: { auth: 'authenticated' }, rateLimit: { kind: 'stream' } } },
    async (request) => ({ ticket: await signer.signTicket(request.gateway.principal), expiresIn: 60 }),
  );

  for (const stream of streams) {
    app.get(
      stream.path,
      {
        config: {
          policy: { auth: stream.auth, roles: stream.roles, permissions: stream.permissions, allowTicket: true },
          rateLimit: { kind: 'stream' },
        },
      },
      (request, reply) => openStream(stream, request, reply),
    );
    app.post(
      stream.path.replace(/\/stream$/, '') || `${stream.path}/publish`,
      { config: { policy: { auth: 'authenticated', roles: stream.publishRoles }, rateLimit: { kind: 'rest' } } },
      async (request, reply) => {
        const body = request.body as { type?: unknown; data?: unknown } | undefined;
        if (typeof body?.type !== 'string' || !/^[\w.:-]{1,64}$/.test(body.type)) {
          throw new GatewayError('BAD_REQUEST', 'Body must be { "type": "<event type>", "data": <any JSON> }');
        }
        const tenant = request.gateway.principal.tenantId;
        if (!tenant) throw new GatewayError('TENANT_ACCESS_DENIED', 'Publishing needs a tenant');
        let id: string;
        try {
          id = await bus.publish(stream.channel, tenant, body.type, JSON.stringify(body.data ?? null));
        } catch {
          // The bus (Redis) is unreachable: the publisher may retry; nothing was half-written.
          reply.header('retry-after', '5');
          throw new GatewayError('EVENTS_UNAVAILABLE');
        }
        return reply.code(201).send({ id });
      },
    );
  }

  async function openStream(stream: StreamConfig, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const { principal } = request.gateway;
    const tenant = principal.tenantId;
    if (!tenant) throw new GatewayError('TENANT_ACCESS_DENIED', 'Event streams are per tenant; this caller has none');
    // Check and take the slot in one step, before the first await: concurrent opens cannot overshoot.
    // The user key is scoped to the tenant: subjects of different tenants never share a budget.
    const slot = slots.take({ instance: '', tenant, user: `${tenant}\u0000${callerIdentity(principal, request.ip)}` });
    if (typeof slot !== 'function') {
      reply.header('retry-after', '5');
      throw new GatewayError('TOO_MANY_STREAMS', REFUSALS[slot]);
    }
    const response = reply.raw;
    const scope = new ConnectionScope(response);
    scope.defer(slot);

    const pending: StreamEvent[] = [];
    let deliver: ((event: StreamEvent) => void) | null = null;
    let start: string;
    try {
      const unsubscribe = await bus.subscribe(stream.channel, tenant, (event) => (deliver ? deliver(event) : pending.push(event)));
      scope.defer(unsubscribe);
      // A client's id only picks what it is replayed; one the stream cannot have produced (beyond its
      // newest, or not an id at all) means "from now", exactly like a first connection.
      const latest = await bus.latestId(stream.channel, tenant);
      const requested = parseEventId(request.headers['last-event-id'] ?? (request.query as { lastEventId?: unknown }).lastEventId);
      start = requested !== null && compareIds(requested, latest) <= 0 ? requested : latest;
    } catch (error) {
      scope.close();
      request.log.info({ tenant, reason: (error as Error).message }, 'event stream could not be opened');
      reply.header('retry-after', '5');
      throw new GatewayError('EVENTS_UNAVAILABLE');
    }

    reply.hijack();
    if (scope.closed) return; // the client left during setup: everything it held is released already
    response.writeHead(200, {
      ...(reply.getHeaders() as Record<string, string>),
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    response.write(`retry: ${sse.retryMs}\n\n`);
    open.add(response);
    metrics.sseConnections.inc();
    const heartbeat = setInterval(() => response.write(': heartbeat\n\n'), sse.heartbeatSeconds * 1000);
    heartbeat.unref();
    scope.defer(() => {
      clearInterval(heartbeat);
      open.delete(response);
      metrics.sseConnections.dec();
    });

    let lastSent = start;
    const send = (event: StreamEvent) => {
      if (scope.closed || response.writableEnded || compareIds(event.id, lastSent) <= 0) return;
      // A slow client is dropped, never waited for: fan-out to the others goes on.
      if (response.writableLength > sse.maxBufferedBytes) {
        metrics.sseEventsDropped.inc();
        request.log.warn({ tenant }, 'closing a slow event stream consumer');
        response.destroy();
        return;
      }
      const data = event.data.split('\n').map((line) => `data: ${line}`).join('\n');
      response.write(`id: ${event.id}\nevent: ${event.type}\n${data}\n\n`);
      lastSent = event.id;
      metrics.sseEventsDelivered.inc();
    };

    try {
      for (const event of await bus.replay(stream.channel, tenant, start)) send(event);
    } catch (error) {
      request.log.warn({ reason: (error as Error).message }, 'event replay failed');
    }
    deliver = send;
    for (const event of pending.splice(0)) send(event);
  }
}

/** Which limit refused a stream. */
type SlotScope = 'instance' | 'tenant' | 'user';

const REFUSALS: Record<SlotScope, string> = {
  instance: 'This instance serves as many event streams as it can; retry shortly',
  tenant: 'This tenant has too many open event streams',
  user: 'This caller has too many open event streams; close one first',
};
