import type { FastifyInstance } from 'fastify';
import { GatewayError, PROBLEM_CONTENT_TYPE, problemDetails, wwwAuthenticate } from '../errors.js';

/** Every non-GraphQL error leaves as RFC 9457 problem+json with a stable code and the request id. */
export function installProblemErrors(app: FastifyInstance): void {
  app.setErrorHandler((error, request, reply) => {
    const gatewayError = GatewayError.from(error);
    if (gatewayError.status >= 500) request.log.error({ err: error }, 'unexpected error');
    else request.log.info({ code: gatewayError.code }, 'request rejected');
    const challenge = wwwAuthenticate(gatewayError);
    if (challenge) reply.header('www-authenticate', challenge);
    return reply
      .code(gatewayError.status)
      .type(PROBLEM_CONTENT_TYPE)
      .send(problemDetails(gatewayError, request.id, request.url.split('?')[0]));
  });

  app.setNotFoundHandler((request, reply) => {
    const error = new GatewayError('NOT_FOUND', `No route for ${request.method} ${request.url.split('?')[0]}`);
    return reply.code(error.status).type(PROBLEM_CONTENT_TYPE).send(problemDetails(error, request.id));
  });
}
