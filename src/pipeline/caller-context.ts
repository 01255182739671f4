import type { FastifyInstance, FastifyRequest } from 'fastify';
import { IDENTITY_HEADERS, anonymousPrincipal, type GatewayContext } from '../context.js';
import type { Stage } from './stages.js';
import { childTraceparent } from './trace-context.js';

const IDENTITY_HEADER_SET = new Set<string>(IDENTITY_HEADERS);

declare module 'fastify' {
  interface FastifyRequest {
    /** Built once per request by the pipeline; what every destination passes downstream. */
    gateway: GatewayContext;
    /** The tenant the client asked to act for (`X-Tenant-ID`), to be checked against its grants. */
    requestedTenantId: string | undefined;
    /**
     * `routeOptions`, read once by the pipeline: Fastify builds a fresh object on every read of
     * `request.routeOptions`, and each stage (auth, rate limit, proxy, metrics, log) reads it.
     * Null before the caller-context stage has run; `routeOf` falls back.
     */
    pipelineRoute: FastifyRequest['routeOptions'] | null;
  }
}

/** The request's route options, as read once by the pipeline (or read now, before it has run). */
export function routeOf(request: FastifyRequest): FastifyRequest['routeOptions'] {
  return request.pipelineRoute ?? request.routeOptions;
}

/**
 * Start of the pipeline proper: take the client's tenant request aside, drop
 * identity headers the client tried to set (only the gateway speaks for the caller), and start the
 * per-request context as anonymous; the access stage fills in who is calling. Returns the stage.
 */
export function installCallerContext(app: FastifyInstance, defaultTenantId: string | null): Stage {
  const anonymous = anonymousPrincipal(defaultTenantId);
  app.decorateRequest('gateway', null as unknown as GatewayContext);
  app.decorateRequest('requestedTenantId', undefined);
  app.decorateRequest('pipelineRoute', null);
  return (request: FastifyRequest) => {
    request.pipelineRoute = request.routeOptions;
    const headers = request.headers;
    const tenant = headers['x-tenant-id'];
    request.requestedTenantId = typeof tenant === 'string' && tenant !== '' ? tenant : undefined;
    for (const name in headers) {
      // Every identity header starts with `x`: the rest are passed over without a string copy.
      if (name.charCodeAt(0) !== 120 /* x */) continue;
      // `x_user_id` too: servers that fold `_` into `-` (CGI/WSGI) would read it as `x-user-id`.
      if (IDENTITY_HEADER_SET.has(name.replace(/_/g, '-'))) delete headers[name];
    }
    request.gateway = {
      requestId: request.id,
      traceparent: childTraceparent(headers.traceparent),
      clientIp: request.ip,
      principal: anonymous,
      tenantReadOnly: false,
      contextToken: null,
      subgraphTimings: [],
      graphql: {},
    };
  };
}
