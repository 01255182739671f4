import type { FastifyInstance, FastifyRequest } from 'fastify';
import { IDENTITY_HEADERS, type GatewayContext, type Principal } from '../context.js';
import { REQUEST_ID_HEADER } from './request-id.js';
import { childTraceparent } from './trace-context.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Built once per request by the pipeline; what every destination passes downstream. */
    gateway: GatewayContext;
  }
}

/** Decides who is calling. The auth stage supplies the real one; until then callers are anonymous. */
export type PrincipalResolver = (request: FastifyRequest) => Principal | Promise<Principal>;

/**
 * First stage of the pipeline: echo the request id, drop identity headers the client tried to set
 * (only the gateway speaks for the caller), and build the typed per-request context.
 */
export function installCallerContext(app: FastifyInstance, resolvePrincipal: PrincipalResolver): void {
  app.decorateRequest('gateway', null as unknown as GatewayContext);
  app.addHook('onRequest', async (request, reply) => {
    reply.header(REQUEST_ID_HEADER, request.id);
    for (const name of IDENTITY_HEADERS) delete request.headers[name];
    request.gateway = {
      requestId: request.id,
      traceparent: childTraceparent(request.headers.traceparent),
      principal: await resolvePrincipal(request),
    };
  });
}
