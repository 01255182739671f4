import type { IncomingHttpHeaders } from 'node:http';
import { Transform, type Readable } from 'node:stream';
import httpProxy from '@fastify/http-proxy';
import replyFrom from '@fastify/reply-from';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { GatewayConfig } from '../config/schema.js';
import { downstreamHeaders } from '../context.js';
import { GatewayError, PROBLEM_CONTENT_TYPE, problemDetails } from '../errors.js';
import { CircuitBreaker, type Permit } from './circuit-breaker.js';
import type { RouteConfig, ServiceConfig } from './config-schema.js';
import { UpstreamPool, type UpstreamInstance } from './upstream-pool.js';

/** RFC 9110 §7.6.1 hop-by-hop fields: they describe one connection, never forwarded. */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade'];
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);

export interface RestUpstreams {
  readonly pools: ReadonlyMap<string, UpstreamPool>;
  readonly breakers: ReadonlyMap<string, CircuitBreaker>;
}

/**
 * The legacy REST routes: each configured prefix forwards, unchanged, to an instance of its service
 * through @fastify/reply-from (undici, keep-alive, streamed bodies both ways). Around it: instance
 * choice and health, retries on another instance, the service's circuit breaker, and the headers
 * the gateway is meant to add. Routes carry their auth policy, so the pipeline's access stage runs
 * for them exactly as for /graphql.
 */
export async function registerRestRoutes(app: FastifyInstance, config: GatewayConfig): Promise<RestUpstreams> {
  const pools = new Map<string, UpstreamPool>();
  const breakers = new Map<string, CircuitBreaker>();
  for (const [name, service] of Object.entries(config.services)) {
    const pool = new UpstreamPool(name, service, app.log);
    pool.startHealthChecks();
    pools.set(name, pool);
    breakers.set(
      name,
      new CircuitBreaker(service.circuitBreaker, Date.now, (state) => app.log.warn({ service: name, state }, 'circuit breaker state changed')),
    );
  }
  app.addHook('onClose', async () => pools.forEach((pool) => pool.stop()));
  // A client's own X-Forwarded-For / Forwarded are kept only behind a trusted proxy.
  const trustForwarded = config.trustProxy !== undefined && config.trustProxy !== '' && config.trustProxy !== 'false';

  await app.register(async (scope) => {
    await scope.register(replyFrom, {
      undici: { connections: 128, pipelining: 1, keepAliveTimeout: 30_000 },
      disableRequestLogging: true,
    });
    // Bodies are streamed to the upstream, never parsed or buffered here.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (request, payload, done) => done(null, limitBody(payload, request)));

    for (const route of config.routes.filter((r) => !r.websocket)) {
      const service = config.services[route.service]!;
      const forwarder = new Forwarder(route, service, pools.get(route.service)!, breakers.get(route.service)!, trustForwarded);
      const options = {
        method: [...route.methods],
        exposeHeadRoute: false,
        bodyLimit: route.bodyLimitBytes ?? config.bodyLimitBytes,
        config: routeConfig(route),
        handler: (request: FastifyRequest, reply: FastifyReply) => forwarder.handle(request, reply),
      };
      scope.route({ ...options, url: route.prefix });
      scope.route({ ...options, url: `${route.prefix}/*` });
    }
  });
  for (const route of config.routes.filter((r) => r.websocket)) {
    await registerWebSocketRoute(app, route, pools.get(route.service)!, trustForwarded);
  }
  return { pools, breakers };
}

/**
 * WebSocket routes go through @fastify/http-proxy, which dispatches the upgrade request through
 * Fastify's router: the pipeline (auth, tenant, policy) runs on the handshake, and the upstream
 * handshake carries the same identity headers as any proxied request. Instance choice uses the
 * service's pool; retries and the circuit breaker do not apply to long-lived sockets.
 */
async function registerWebSocketRoute(
  app: FastifyInstance,
  route: RouteConfig,
  pool: UpstreamPool,
  trustForwarded: boolean,
): Promise<void> {
  const pickUrl = () => {
    const instance = pool.pick();
    if (!instance) throw new GatewayError('NO_HEALTHY_UPSTREAM', `No healthy instance of ${route.service}`);
    return instance.url;
  };
  await app.register(httpProxy, {
    upstream: '',
    prefix: route.prefix,
    rewritePrefix: route.rewritePrefix ?? route.prefix,
    websocket: true,
    httpMethods: [...route.methods],
    config: routeConfig(route),
    // Decide before the upgrade: once the socket is switched, a missing upstream can only be logged.
    preHandler: async () => {
      if (!pool.instances.some((instance) => pool.isAvailable(instance))) {
        throw new GatewayError('NO_HEALTHY_UPSTREAM', `No healthy instance of ${route.service}`);
      }
    },
    replyOptions: {
      getUpstream: () => pickUrl(),
      rewriteRequestHeaders: (request, headers) => forwardedRequestHeaders(request as FastifyRequest, headers, trustForwarded),
    },
    // `rewriteRequestHeaders` is documented and implemented by @fastify/http-proxy for the upstream
    // handshake but missing from its type declarations, hence the cast.
    wsClientOptions: {
      rewriteRequestHeaders: (headers: Record<string, string>, request: FastifyRequest) => ({
        ...headers,
        ...downstreamHeaders(request.gateway),
      }),
    } as never,
  });
}

class Forwarder {
  constructor(
    private readonly route: RouteConfig,
    private readonly service: ServiceConfig,
    private readonly pool: UpstreamPool,
    private readonly breaker: CircuitBreaker,
    private readonly trustForwarded: boolean,
  ) {}

  handle(request: FastifyRequest, reply: FastifyReply): FastifyReply {
    const declared = Number(request.headers['content-length'] ?? 0);
    if (declared > request.routeOptions.bodyLimit) throw new GatewayError('PAYLOAD_TOO_LARGE');
    const path = this.upstreamPath(request);
    const permit = this.breaker.tryAcquire();
    if (!permit) {
      reply.header('retry-after', String(this.breaker.retryAfterSeconds()));
      throw new GatewayError('CIRCUIT_OPEN', `The ${this.route.service} service is failing; requests are paused`);
    }
    reply.raw.once('close', () => this.breaker.release(permit));
    const instance = this.pool.pick();
    if (!instance) {
      this.breaker.recordFailure(permit);
      throw new GatewayError('NO_HEALTHY_UPSTREAM', `No healthy instance of ${this.route.service}`);
    }
    this.attempt(request, reply, path, permit, instance, 0, new Set());
    return reply;
  }

  private attempt(
    request: FastifyRequest,
    reply: FastifyReply,
    path: string,
    permit: Permit,
    instance: UpstreamInstance,
    attempt: number,
    tried: Set<UpstreamInstance>,
  ): void {
    tried.add(instance);
    instance.active++;
    let settled = false;
    // In flight until the response is over (or this attempt failed): what least-connections counts.
    const settle = () => {
      if (!settled) instance.active--;
      settled = true;
    };
    reply.raw.once('close', settle);

    reply.from(instance.url + path, {
      timeout: this.service.timeoutMs,
      // Retries are ours (another instance, idempotent only); reply-from's own 503 retries are off.
      retryDelay: () => null,
      rewriteRequestHeaders: (_req, headers) => forwardedRequestHeaders(request, headers, this.trustForwarded),
      rewriteHeaders: (headers) => withoutHopByHop(headers),
      onResponse: (_req, res, response) => {
        const failed = response.statusCode >= 500;
        if (failed) this.pool.recordFailure(instance);
        else this.pool.recordSuccess(instance);
        if (failed) this.breaker.recordFailure(permit);
        else this.breaker.recordSuccess(permit);
        res.send(response.stream);
      },
      onError: (_reply, { error }) => {
        settle();
        // The client's body crossed the limit mid-stream: its fault, not the upstream's.
        if (oversized.has(request) || isBodyTooLarge(error)) {
          this.breaker.release(permit);
          sendProblem(request, reply, new GatewayError('PAYLOAD_TOO_LARGE'));
          return;
        }
        this.pool.recordFailure(instance);
        const timedOut = isTimeout(error);
        // Retry only what cannot have reached the service twice with side effects, and only while
        // nothing has been sent to the client: idempotent, bodiless, and not a timeout.
        const retryable =
          !timedOut && !reply.sent && attempt < this.service.retries && IDEMPOTENT.has(request.method) && !hasBody(request);
        const next = retryable ? this.pool.pick(tried) : null;
        if (next) {
          const backoff = 25 * 2 ** attempt + Math.random() * 25;
          setTimeout(() => {
            try {
              this.attempt(request, reply, path, permit, next, attempt + 1, tried);
            } catch (retryError) {
              // Outside the request's promise chain: an exception here must not reach the process.
              request.log.error({ err: retryError }, 'upstream retry failed');
              sendProblem(request, reply, new GatewayError('UPSTREAM_UNAVAILABLE', `${this.route.service} could not be reached`));
            }
          }, backoff);
          return;
        }
        this.breaker.recordFailure(permit);
        const gatewayError = timedOut
          ? new GatewayError('UPSTREAM_TIMEOUT', `${this.route.service} did not answer within ${this.service.timeoutMs} ms`)
          : new GatewayError('UPSTREAM_UNAVAILABLE', `${this.route.service} could not be reached`);
        request.log.warn({ service: this.route.service, instance: instance.url, code: gatewayError.code, cause: causeCode(error) }, 'upstream request failed');
        sendProblem(request, reply, gatewayError);
      },
    });
  }

  /**
   * The raw path (still percent-encoded, exactly as sent), with the prefix rewritten if configured.
   * The router matched a decoded path, so the raw one must literally carry the prefix: otherwise
   * (`/api/v1/user%73`) the prefix arithmetic below would cut the wrong bytes.
   */
  private upstreamPath(request: FastifyRequest): string {
    const raw = request.raw.url ?? '/';
    const queryAt = raw.indexOf('?');
    const path = queryAt === -1 ? raw : raw.slice(0, queryAt);
    const rest = path.slice(this.route.prefix.length);
    if (!path.startsWith(this.route.prefix) || (rest !== '' && !rest.startsWith('/'))) {
      throw new GatewayError('PATH_NOT_ALLOWED', 'The path must name its route prefix literally (no percent-encoding)');
    }
    if (this.route.rewritePrefix === undefined) return path;
    return this.route.rewritePrefix + rest || '/';
  }
}

/** The pipeline's view of a route: who may call it and which rate limit buckets apply. */
function routeConfig(route: RouteConfig) {
  return {
    policy: { auth: route.auth, roles: route.roles, permissions: route.permissions },
    rateLimit: {
      kind: 'rest' as const,
      ...(route.rateLimit ? { route: { name: `route${route.prefix.replace(/\//g, '-')}`, policy: route.rateLimit } } : {}),
    },
  };
}

function forwardedRequestHeaders(request: FastifyRequest, headers: IncomingHttpHeaders, trusted: boolean): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = { ...headers };
  for (const name of HOP_BY_HOP) delete out[name];
  const clientIp = request.ip;
  const proto = request.protocol;
  const host = request.headers.host ?? '';
  const priorFor = trusted ? request.headers['x-forwarded-for'] : undefined;
  out['x-forwarded-for'] = priorFor ? `${priorFor}, ${clientIp}` : clientIp;
  out['x-forwarded-proto'] = proto;
  out['x-forwarded-host'] = host;
  const forNode = clientIp.includes(':') ? `"[${clientIp}]"` : clientIp;
  const element = `for=${forNode};proto=${proto}${host ? `;host="${host}"` : ''}`;
  out.forwarded = trusted && request.headers.forwarded ? `${request.headers.forwarded}, ${element}` : element;
  Object.assign(out, downstreamHeaders(request.gateway));
  return out;
}

function withoutHopByHop(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out = { ...headers };
  for (const name of HOP_BY_HOP) delete out[name];
  return out;
}

function sendProblem(request: FastifyRequest, reply: FastifyReply, error: GatewayError): void {
  if (reply.sent) return;
  reply.code(error.status).type(PROBLEM_CONTENT_TYPE).send(problemDetails(error, request.id, request.url.split('?')[0]));
}

function hasBody(request: FastifyRequest): boolean {
  return request.body !== undefined && request.body !== null;
}

function causeCode(error: Error): string | undefined {
  const cause = error.cause as { code?: string } | undefined;
  return cause?.code ?? (error as { code?: string }).code;
}

function isTimeout(error: Error): boolean {
  const code = causeCode(error);
  return error.name === 'GatewayTimeoutError' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || /timeout/i.test(error.message);
}

function isBodyTooLarge(error: Error): boolean {
  let current: unknown = error;
  while (current instanceof Error) {
    if ((current as { code?: string }).code === 'FST_ERR_CTP_BODY_TOO_LARGE') return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * Counts streamed request bytes: a chunked upload with no Content-Length is cut at the route's
 * limit (the upstream request is aborted and the client gets 413) instead of streaming on.
 */
function limitBody(payload: Readable, request: FastifyRequest): Readable {
  const limit = request.routeOptions.bodyLimit;
  let seen = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      if (seen > limit) {
        oversized.add(request);
        callback(Object.assign(new Error('request body too large'), { code: 'FST_ERR_CTP_BODY_TOO_LARGE' }));
        return;
      }
      callback(null, chunk);
    },
  });
  // The upstream client consumes (and reports) this stream's errors; this listener only guarantees
  // that an error raised before or after it listens can never become an uncaught exception.
  counter.on('error', () => {});
  payload.on('error', (error) => counter.destroy(error));
  return payload.pipe(counter);
}

/** Requests whose streamed body crossed the route limit: their upstream failure is a 413. */
const oversized = new WeakSet<FastifyRequest>();
