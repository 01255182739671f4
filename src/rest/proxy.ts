import httpProxy from '@fastify/http-proxy';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { GatewayConfig } from '../config/schema.js';
import { downstreamHeaders } from '../context.js';
import { GatewayError, PROBLEM_CONTENT_TYPE, problemDetails } from '../errors.js';
import { callerIdentity } from '../ratelimit/limiter.js';
import { BodyGuard, type BodyViolation } from './body-guard.js';
import { CircuitBreaker } from './circuit-breaker.js';
import { ConcurrentShares } from '../ratelimit/concurrent-shares.js';
import type { RouteConfig, ServiceConfig } from './config-schema.js';
import { installExpectContinue } from './expect-continue.js';
import { assertValidHost, forwardedHeaderList, forwardedRequestHeaders } from './forwarding.js';
import { Exchange, type ExchangeOwner } from './exchange.js';
import { UpstreamDispatcher } from './upstream-dispatcher.js';
import { classifyUpstreamError, errorCodes } from './upstream-errors.js';
import { UpstreamPool, type UpstreamInstance } from './upstream-pool.js';
import { routeOf } from '../pipeline/caller-context.js';
import { pathOf } from '../pipeline/path-guard.js';

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);
/**
 * Characters a path may carry to the upstream as they are; anything else goes through the WHATWG
 * URL parser first, which percent-encodes what undici would refuse (as the URL the proxy used to
 * build for every request did).
 */
const PLAIN_PATH = /^[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*$/;

/** Where an instance is reached: parsed once per instance, not per request. */
interface Target {
  readonly origin: string;
  /** The Host header the upstream expects (its own authority). */
  readonly host: string;
  /** A path in the instance URL, prefixed to every request path ('' for none). */
  readonly basePath: string;
}
const targets = new WeakMap<UpstreamInstance, Target>();
function targetOf(instance: UpstreamInstance): Target {
  let target = targets.get(instance);
  if (!target) {
    const url = new URL(instance.url);
    target = { origin: url.origin, host: url.host, basePath: url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '') };
    targets.set(instance, target);
  }
  return target;
}

export interface RestUpstreams {
  readonly pools: ReadonlyMap<string, UpstreamPool>;
  readonly breakers: ReadonlyMap<string, CircuitBreaker>;
}

/**
 * The legacy REST routes: each configured prefix forwards, unchanged, to an instance of its service
 * through undici (keep-alive pools, streamed bodies both ways). Around it: per-caller
 * and per-tenant shares of the service's connections, instance choice and health, retries on another
 * instance, the service's circuit breaker, and the headers the gateway is meant to add. Routes carry
 * their auth policy, so the pipeline's access stage runs for them exactly as for /graphql.
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
  installExpectContinue(app);

  await app.register(async (scope) => {
    // Bodies are streamed to the upstream, never parsed or buffered here.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (request, payload, done) =>
      done(null, new BodyGuard(payload, routeOf(request).bodyLimit, config.requestBodyTimeoutMs)),
    );

    for (const [name, service] of Object.entries(config.services)) {
      const routes = config.routes.filter((r) => r.service === name && !r.websocket);
      if (routes.length === 0) continue;
      // One undici agent per service, its pools sized by the service's maxConnections.
      await scope.register(async (serviceScope) => {
        const dispatcher = new UpstreamDispatcher(service.maxConnections);
        serviceScope.addHook('onClose', () => dispatcher.destroy());
        const gate = new ConcurrentShares({ caller: service.maxConnectionsPerCaller, tenant: service.maxConnectionsPerTenant });
        for (const route of routes) {
          const forwarder = new Forwarder(route, service, pools.get(name)!, breakers.get(name)!, gate, dispatcher);
          const options = {
            method: [...route.methods],
            exposeHeadRoute: false,
            bodyLimit: route.bodyLimitBytes ?? config.bodyLimitBytes,
            config: routeConfig(route),
            // Returns nothing: a returned reply is a thenable, which Fastify awaits with an
            // end-of-stream watch on the response (listeners and closures per request).
            handler: (request: FastifyRequest, reply: FastifyReply): void => forwarder.handle(request, reply),
          };
          serviceScope.route({ ...options, url: route.prefix });
          serviceScope.route({ ...options, url: `${route.prefix}/*` });
        }
      });
    }
  });
  for (const route of config.routes.filter((r) => r.websocket)) {
    await registerWebSocketRoute(app, route, pools.get(route.service)!);
  }
  return { pools, breakers };
}

/**
 * WebSocket routes go through @fastify/http-proxy, which dispatches the upgrade request through
 * Fastify's router: the pipeline (auth, tenant, policy) runs on the handshake, and the upstream
 * handshake carries the same identity headers as any proxied request. Instance choice uses the
 * service's pool; retries and the circuit breaker do not apply to long-lived sockets.
 */
async function registerWebSocketRoute(app: FastifyInstance, route: RouteConfig, pool: UpstreamPool): Promise<void> {
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
    preHandler: async (request) => {
      assertValidHost(request);
      if (!pool.instances.some((instance) => pool.isAvailable(instance))) {
        throw new GatewayError('NO_HEALTHY_UPSTREAM', `No healthy instance of ${route.service}`);
      }
    },
    replyOptions: {
      getUpstream: () => pickUrl(),
      rewriteRequestHeaders: (request, headers) => forwardedRequestHeaders(request as FastifyRequest, headers),
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

/**
 * One route's forwarding: admission (connection shares, breaker), instance choice, the upstream
 * exchange and what its outcome means (health, breaker, retries, the gateway's own 4xx/5xx answers).
 */
class Forwarder implements ExchangeOwner {
  constructor(
    private readonly route: RouteConfig,
    private readonly service: ServiceConfig,
    private readonly pool: UpstreamPool,
    private readonly breaker: CircuitBreaker,
    private readonly gate: ConcurrentShares<'caller' | 'tenant'>,
    private readonly dispatcher: UpstreamDispatcher,
  ) {}

  handle(request: FastifyRequest, reply: FastifyReply): void {
    const body = bodyOf(request);
    try {
      this.forward(request, reply, body);
    } catch (error) {
      closeIfBodyPending(request, reply, body);
      throw error;
    }
  }

  private forward(request: FastifyRequest, reply: FastifyReply, body: BodyGuard | null): void {
    const declared = Number(request.headers['content-length'] ?? 0);
    if (declared > routeOf(request).bodyLimit || body?.violation === 'too-large') throw new GatewayError('PAYLOAD_TOO_LARGE');
    if (body?.violation === 'idle') {
      reply.header('connection', 'close');
      throw new GatewayError('REQUEST_TIMEOUT', 'The request body stopped arriving');
    }
    // The client left while an async hook ran: nobody to answer, and nothing must be taken for it.
    if (reply.raw.destroyed) {
      closeIfBodyPending(request, reply, body);
      return;
    }
    const rawUrl = request.raw.url ?? '/';
    const path = this.upstreamPath(rawUrl);
    const host = assertValidHost(request);
    const exchange = new Exchange(this, request, reply, path, queryOf(rawUrl), host);
    this.admit(request, reply, exchange);
    const permit = this.breaker.tryAcquire();
    if (!permit) {
      reply.header('retry-after', String(this.breaker.retryAfterSeconds()));
      throw new GatewayError('CIRCUIT_OPEN', `The ${this.route.service} service is failing; requests are paused`);
    }
    exchange.permit = permit;
    exchange.permitHeld = true;
    const instance = this.pool.pick();
    if (!instance) {
      if (this.pool.isSaturated()) {
        // Full, not failing: refuse at once (a queued request would wait with no timeout running).
        exchange.permitHeld = false;
        this.breaker.release(permit);
        request.log.warn({ service: this.route.service, code: 'UPSTREAM_BUSY' }, 'every upstream connection is in use');
        reply.header('retry-after', '1');
        closeIfBodyPending(request, reply, body);
        sendProblem(request, reply, new GatewayError('UPSTREAM_BUSY', `Every connection to ${this.route.service} is in use; retry shortly`));
        return;
      }
      exchange.permitHeld = false;
      this.breaker.recordFailure(permit);
      throw new GatewayError('NO_HEALTHY_UPSTREAM', `No healthy instance of ${this.route.service}`);
    }
    body?.once('violation', (violation: BodyViolation) => this.refuseBody(exchange, violation));
    this.attempt(exchange, instance);
  }

  /**
   * The caller's and its tenant's share of this service's connections, held until the response ends.
   * Over it: 429, nothing sent upstream, nothing counted against the service.
   */
  private admit(request: FastifyRequest, reply: FastifyReply, exchange: Exchange): void {
    const { principal } = request.gateway;
    const caller = callerIdentity(principal, request.gateway.clientIp);
    const entered = this.gate.take({ caller, tenant: principal.tenantId === null ? caller : `tenant:${principal.tenantId}` });
    if (typeof entered === 'function') {
      exchange.releaseShare = entered;
      return;
    }
    reply.header('retry-after', '1');
    throw new GatewayError(
      'TOO_MANY_CONCURRENT_REQUESTS',
      entered === 'caller'
        ? `Too many requests of this caller in flight to ${this.route.service}; wait for one to finish`
        : `Too many requests of this tenant in flight to ${this.route.service}; wait for one to finish`,
    );
  }

  /**
   * The body broke its limit or stopped arriving: the client's fault, answered here, never the
   * upstream's — also when the upstream's headers already arrived, as long as none reached the client.
   */
  private refuseBody(exchange: Exchange, violation: BodyViolation): void {
    if (exchange.cancelled || exchange.committed) return;
    exchange.answer();
    const error =
      violation === 'idle'
        ? new GatewayError('REQUEST_TIMEOUT', 'The request body stopped arriving')
        : new GatewayError('PAYLOAD_TOO_LARGE');
    exchange.request.log.info({ service: this.route.service, code: error.code }, 'request rejected');
    // The rest of the body will not be read: this connection cannot carry another request.
    exchange.reply.header('connection', 'close');
    sendProblem(exchange.request, exchange.reply, error);
  }

  private attempt(exchange: Exchange, instance: UpstreamInstance): void {
    if (exchange.cancelled || exchange.over) return;
    exchange.begin(instance);
    const { request } = exchange;
    const target = targetOf(instance);
    const headers = forwardedHeaderList(request, request.headers, exchange.host, target.host);
    const upstreamPath = target.basePath + exchange.path;
    this.dispatcher.dispatch(
      {
        origin: target.origin,
        path: (PLAIN_PATH.test(upstreamPath) ? upstreamPath : new URL(upstreamPath, target.origin).pathname) + exchange.query,
        method: request.method,
        headers,
        body: bodyOf(request),
        timeoutMs: this.service.timeoutMs,
      },
      exchange,
    );
  }

  /** The upstream answered: 5xx counts against the instance and the breaker, anything else for them. */
  responded(exchange: Exchange, status: number): void {
    const instance = exchange.instance!;
    exchange.permitHeld = false;
    if (status >= 500) {
      this.pool.recordFailure(instance);
      this.breaker.recordFailure(exchange.permit!);
    } else {
      this.pool.recordSuccess(instance);
      this.breaker.recordSuccess(exchange.permit!);
    }
  }

  /**
   * The upstream's body failed (reset, stalled past the timeout) before the client got a byte of it:
   * the answer is still the gateway's to give, a 502/504 for the upstream's failure, without the
   * upstream's description of a body that never came (none of its headers reached the reply).
   */
  bodyFailed(exchange: Exchange, error: Error): void {
    const instance = exchange.instance!;
    const failure = classifyUpstreamError(error);
    if (failure === 'timeout' || failure === 'upstream') {
      this.pool.recordFailure(instance);
      this.breaker.recordFailure(exchange.permit!);
    }
    const answer =
      failure === 'timeout'
        ? new GatewayError('UPSTREAM_TIMEOUT', `${this.route.service} did not send its response within ${this.service.timeoutMs} ms`)
        : new GatewayError('UPSTREAM_UNAVAILABLE', `${this.route.service} failed while sending its response`);
    exchange.request.log.warn(
      { service: this.route.service, instance: instance.url, causes: errorCodes(error), code: answer.code },
      'upstream response body failed',
    );
    closeIfBodyPending(exchange.request, exchange.reply, bodyOf(exchange.request));
    sendProblem(exchange.request, exchange.reply, answer);
  }

  /** Bytes of the body are out: the client's response can only be cut, as the upstream's was. */
  bodyBroke(exchange: Exchange, error: Error): void {
    exchange.request.log.warn(
      { service: this.route.service, instance: exchange.instance!.url, causes: errorCodes(error) },
      'upstream response body broke off after the response started',
    );
    exchange.reply.raw.destroy();
  }

  ended(exchange: Exchange): void {
    exchange.settle();
    if (exchange.permitHeld) this.breaker.release(exchange.permit!);
    exchange.permitHeld = false;
    exchange.releaseShare?.();
  }

  failed(exchange: Exchange, error: Error): void {
    const { request, reply } = exchange;
    const instance = exchange.instance!;
    // Requests with a body are never retried: whatever is answered below, the rest of the body will not be read.
    closeIfBodyPending(request, reply, bodyOf(request));
    exchange.settle();
    const permit = exchange.permit!;
    const failure = classifyUpstreamError(error);
    const log = { service: this.route.service, instance: instance.url, causes: errorCodes(error) };
    if (failure === 'rejected' || failure === 'gateway') {
      // Not the upstream's doing: neither the breaker nor passive health hear of it.
      exchange.permitHeld = false;
      this.breaker.release(permit);
      if (failure === 'rejected') {
        request.log.info({ ...log, code: 'BAD_REQUEST' }, 'request cannot be forwarded as sent');
        sendProblem(request, reply, new GatewayError('BAD_REQUEST', 'The request cannot be forwarded as sent'));
      } else {
        request.log.warn({ ...log, code: 'UPSTREAM_UNAVAILABLE', err: error }, 'upstream request failed on the gateway side');
        sendProblem(request, reply, new GatewayError('UPSTREAM_UNAVAILABLE', `${this.route.service} could not be reached`));
      }
      return;
    }
    this.pool.recordFailure(instance);
    const timedOut = failure === 'timeout';
    // Retry only what cannot have reached the service twice with side effects, and only while
    // nothing has been sent to the client: idempotent, bodiless, and not a timeout.
    const attempt = exchange.attempts - 1;
    const retryable =
      !timedOut && !reply.sent && attempt < this.service.retries && IDEMPOTENT.has(request.method) && !hasBody(request);
    let next: UpstreamInstance | null = null;
    if (retryable) {
      exchange.tried ??= new Set();
      exchange.tried.add(instance);
      next = this.pool.pick(exchange.tried);
    }
    if (next) {
      const backoff = 25 * 2 ** attempt + Math.random() * 25;
      setTimeout(() => {
        try {
          this.attempt(exchange, next);
        } catch (retryError) {
          // Outside the request's promise chain: an exception here must not reach the process.
          request.log.error({ err: retryError }, 'upstream retry failed');
          sendProblem(request, reply, new GatewayError('UPSTREAM_UNAVAILABLE', `${this.route.service} could not be reached`));
        }
      }, backoff);
      return;
    }
    exchange.permitHeld = false;
    this.breaker.recordFailure(permit);
    const gatewayError = timedOut
      ? new GatewayError('UPSTREAM_TIMEOUT', `${this.route.service} did not answer within ${this.service.timeoutMs} ms`)
      : new GatewayError('UPSTREAM_UNAVAILABLE', `${this.route.service} could not be reached`);
    request.log.warn({ ...log, code: gatewayError.code }, 'upstream request failed');
    sendProblem(request, reply, gatewayError);
  }

  /**
   * The raw path (still percent-encoded, exactly as sent), with the prefix rewritten if configured.
   * The router matched a decoded path, so the raw one must literally carry the prefix: otherwise
   * (`/api/v1/user%73`) the prefix arithmetic below would cut the wrong bytes.
   */
  private upstreamPath(raw: string): string {
    const path = pathOf(raw);
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

function sendProblem(request: FastifyRequest, reply: FastifyReply, error: GatewayError): void {
  if (reply.sent || reply.raw.headersSent) return;
  reply.code(error.status).type(PROBLEM_CONTENT_TYPE).send(problemDetails(error, request.id, pathOf(request.url)));
}

/**
 * Refused before the body was read: the rest of it will not be, so the connection cannot carry
 * another request. Close it (as nginx does) instead of draining someone's upload.
 */
function closeIfBodyPending(request: FastifyRequest, reply: FastifyReply, body: BodyGuard | null): void {
  if (!body || request.raw.complete) return;
  reply.header('connection', 'close');
  body.destroy();
}

function bodyOf(request: FastifyRequest): BodyGuard | null {
  return request.body instanceof BodyGuard ? request.body : null;
}

/** The raw query string with its `?`, as the client sent it ('' for none). */
function queryOf(rawUrl: string): string {
  const queryAt = rawUrl.indexOf('?');
  return queryAt === -1 ? '' : rawUrl.slice(queryAt);
}

function hasBody(request: FastifyRequest): boolean {
  return request.body !== undefined && request.body !== null;
}
