import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ContextSigner } from '../auth/context-signer.js';
import { GatewayError } from '../errors.js';
import type { Drain } from '../pipeline/drain.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { EventBus, StreamEvent } from './bus.js';
import type { SseConfig, StreamConfig } from './config-schema.js';
import { eventFrame, Fanout, type Sink } from './fanout.js';
import { STREAM_HEADERS, streamHead } from './stream-head.js';
import { markStreamSocket } from './stream-sockets.js';
import { compareIds, parseEventId } from './event-id.js';
import { ConcurrentShares } from '../ratelimit/concurrent-shares.js';
import { callerIdentity } from '../ratelimit/limiter.js';
import { endServerSpan } from '../observability/tracing.js';
import { recordUnfinishedRequest } from '../observability/request-log.js';

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
  const open = new Set<EventStream>();
  const slots = new ConcurrentShares<SlotScope>({
    instance: sse.maxConnections,
    tenant: sse.maxConnectionsPerTenant,
    user: sse.maxConnectionsPerUser,
  });
  const fanout = new Fanout(bus, (count) => {
    if (count > 0) metrics.sseEventsDelivered.inc(count);
  });
  const host: StreamHost = {
    fanout,
    maxBufferedBytes: sse.maxBufferedBytes,
    delivered: () => metrics.sseEventsDelivered.inc(),
    opened: (stream) => {
      open.add(stream);
      metrics.sseConnections.inc();
    },
    closed: (stream) => {
      open.delete(stream);
      metrics.sseConnections.dec();
      // The stream's own completion line, span and request count: Fastify's come with a finished
      // response, which a stream never has.
      const { reply } = stream;
      reply.log.info({ tenant: stream.tenant, durationMs: Math.round(reply.elapsedTime) }, 'event stream closed');
      endServerSpan(reply.request, 200);
      recordUnfinishedRequest(metrics, reply.request, 200, reply.elapsedTime / 1000);
    },
    tooSlow: (stream) => {
      metrics.sseEventsDropped.inc();
      stream.reply.log.warn({ tenant: stream.tenant }, 'closing a slow event stream consumer');
    },
  };

  // One timer for every stream's heartbeat (not one per stream): a comment line, the same bytes for all.
  const heartbeat = setInterval(() => {
    for (const stream of open) stream.heartbeat();
  }, sse.heartbeatSeconds * 1000);
  heartbeat.unref();

  // Streams never finish by themselves: end them when the drain begins (clients reconnect elsewhere)
  // and again at close for any opened since.
  const endAll = () => {
    for (const stream of open) stream.end();
  };
  drain.onDrain(endAll);
  app.addHook('preClose', async () => endAll());
  app.addHook('onClose', async () => {
    clearInterval(heartbeat);
    await bus.close();
  });

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

  async function openStream(config: StreamConfig, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const { principal } = request.gateway;
    const tenant = principal.tenantId;
    if (!tenant) throw new GatewayError('TENANT_ACCESS_DENIED', 'Event streams are per tenant; this caller has none');
    // A HEAD request gets the stream's head and no stream (nothing can follow it on the connection).
    if (request.method === 'HEAD') return void reply.headers(STREAM_HEADERS).send();
    // Pipelined behind an answer still being written (another stream, say), a response has no socket
    // yet and may never get one: it could neither be written nor notice its client leaving.
    if (!reply.raw.socket) throw new GatewayError('BAD_REQUEST', 'An event stream cannot be pipelined behind another request; open it on a connection of its own');
    // Check and take the slot in one step, before the first await: concurrent opens cannot overshoot.
    // The user key is scoped to the tenant: subjects of different tenants never share a budget.
    const slot = slots.take({ instance: '', tenant, user: `${tenant}\u0000${callerIdentity(principal, request.gateway.clientIp)}` });
    if (typeof slot !== 'function') {
      reply.header('retry-after', '5');
      throw new GatewayError('TOO_MANY_STREAMS', REFUSALS[slot]);
    }
    const stream = new EventStream(reply, config.channel, tenant, host, slot);
    const response = reply.raw;
    if (response.destroyed) {
      // Gone before setup: nothing to subscribe to or ask the store for, and nobody to answer.
      stream.close();
      return void reply.hijack();
    }
    // The client may leave during any await below: the stream gives back whatever it holds by then.
    response.on('close', () => stream.close());

    let start: string;
    let missed: StreamEvent[];
    try {
      // Joined first, so nothing published from here on is missed; held back until the replay is out.
      await stream.join();
      // A client's id only picks what it is replayed; one the stream cannot have produced (beyond its
      // newest, or not an id at all) means "from now", exactly like a first connection. "Now" is the
      // bus's live position (everything after it reaches this stream) without a store round trip;
      // only an id beyond it needs the store's newest, to tell one not delivered yet from a future one.
      const requested = parseEventId(request.headers['last-event-id'] ?? (request.query as { lastEventId?: unknown }).lastEventId);
      const live = bus.livePosition(config.channel, tenant);
      const latest = live !== null && (requested === null || compareIds(requested, live) <= 0) ? live : await bus.latestId(config.channel, tenant);
      start = requested !== null && compareIds(requested, latest) <= 0 ? requested : latest;
      // The replay is read before the head is sent: once a 200 is out, a failed replay would be a gap the
      // client cannot tell; as a 503 it retries with the same id. From the newest id, the live
      // subscription (in place before it was read) brings everything.
      missed = start === latest ? [] : await bus.replay(config.channel, tenant, start);
    } catch (error) {
      stream.close();
      request.log.info({ tenant, reason: (error as Error).message }, 'event stream could not be opened');
      reply.header('retry-after', '5');
      throw new GatewayError('EVENTS_UNAVAILABLE');
    }

    let head: Buffer;
    try {
      head = streamHead(reply.getHeaders(), sse.retryMs);
    } catch (error) {
      // A header value Node would refuse too: answered as a server error, before the stream takes over.
      stream.close();
      throw error;
    }
    reply.hijack();
    const socket = response.socket;
    if (stream.closed || !socket?.writable) {
      // The client left during setup: give back what the stream holds (close runs once).
      stream.close();
      return;
    }
    // The head and every frame go straight to the socket (see streamHead): the response is never
    // written through, and the connection closing is the end of the stream.
    markStreamSocket(socket);
    socket.write(head);
    stream.attach(socket);
    stream.goLive(start, missed);
  }
}

/** What every stream of one registration shares (one object, referenced by each stream). */
interface StreamHost {
  readonly fanout: Fanout;
  readonly maxBufferedBytes: number;
  /** Counts one event written outside the fan-out (replay). */
  delivered(): void;
  /** A stream is on the air: it gets heartbeats, is counted, and is ended on shutdown. */
  opened(stream: EventStream): void;
  /** The stream's connection closed after it went on the air. */
  closed(stream: EventStream): void;
  /** Accounts for a client disconnected for being too far behind. */
  tooSlow(stream: EventStream): void;
}

const HEARTBEAT = Buffer.from(': heartbeat\n\n');

/**
 * One client's stream, and everything a connection holds beyond Node's and Fastify's own objects:
 * no closures (but the one `close` listener), no timer, no clean-up list. Until it goes live,
 * events from the fan-out wait in `pending`; then the replay and those are written in id order
 * without repeats, and live events follow. Frames are written to the connection's socket: no chunk
 * framing, no `ServerResponse` bookkeeping per write. Whatever it holds (its slot, its place in the
 * fan-out, its place on the air) is given back exactly once, on `close`, whenever that comes.
 */
class EventStream implements Sink {
  private socket: Socket | null = null;
  private pending: StreamEvent[] | null = [];
  /** The last id written while catching up; null once a live event has passed it (the bus delivers in order). */
  private after: string | null = null;
  private joined = false;
  closed = false;

  constructor(
    readonly reply: FastifyReply,
    private readonly channel: string,
    readonly tenant: string,
    private readonly host: StreamHost,
    private readonly releaseSlot: () => void,
  ) {}

  /** Joins the tenant's fan-out (rejects if the stream cannot be followed now). */
  async join(): Promise<void> {
    await this.host.fanout.join(this.channel, this.tenant, this);
    this.joined = true;
    if (this.closed) this.host.fanout.leave(this.channel, this.tenant, this);
  }

  /** The connection to write to, once the head is on it: the stream is on the air. */
  attach(socket: Socket): void {
    this.socket = socket;
    this.host.opened(this);
  }

  /** Gives back everything the stream holds; runs once, when the connection closes or setup fails. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.releaseSlot();
    if (this.joined) this.host.fanout.leave(this.channel, this.tenant, this);
    if (this.socket) this.host.closed(this);
  }

  deliver(event: StreamEvent, frame: Buffer): boolean {
    if (this.pending) {
      this.pending.push(event);
      return false;
    }
    if (this.after !== null) {
      if (compareIds(event.id, this.after) <= 0) return false;
      this.after = null;
    }
    return this.write(frame);
  }

  /** Writes the replay (events after `start`), then what arrived meanwhile, skipping repeats. */
  goLive(start: string, missed: readonly StreamEvent[]): void {
    this.after = start;
    const pending = this.pending ?? [];
    this.pending = null;
    for (const event of [...missed, ...pending]) {
      if (compareIds(event.id, this.after) <= 0) continue;
      if (!this.write(eventFrame(event))) return;
      this.after = event.id;
      this.host.delivered();
    }
  }

  /** Capped like an event: on a quiet tenant heartbeats are all a stalled client is sent. */
  heartbeat(): void {
    this.write(HEARTBEAT);
  }

  /** Ends the stream (the body is delimited by the connection): the client reconnects. */
  end(): void {
    this.socket?.end();
  }

  /** A slow client is dropped, never waited for: fan-out to the others goes on. */
  private write(frame: Buffer): boolean {
    const socket = this.socket;
    if (!socket || !socket.writable) return false;
    if (socket.writableLength > this.host.maxBufferedBytes) {
      this.host.tooSlow(this);
      socket.destroy();
      return false;
    }
    socket.write(frame);
    return true;
  }
}

/** Which limit refused a stream. */
type SlotScope = 'instance' | 'tenant' | 'user';

const REFUSALS: Record<SlotScope, string> = {
  instance: 'This instance serves as many event streams as it can; retry shortly',
  tenant: 'This tenant has too many open event streams',
  user: 'This caller has too many open event streams; close one first',
};
