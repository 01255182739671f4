import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { GatewayError, PROBLEM_CONTENT_TYPE, problemDetails, wwwAuthenticate } from '../errors.js';
import { pathOf } from './path-guard.js';

/** Every non-GraphQL error leaves as RFC 9457 problem+json with a stable code and the request id. */
export function installProblemErrors(app: FastifyInstance): void {
  app.setErrorHandler((error, request, reply) => {
    const gatewayError = GatewayError.from(error);
    logRejection(request.log, error, gatewayError);
    const challenge = wwwAuthenticate(gatewayError);
    if (challenge) reply.header('www-authenticate', challenge);
    return reply
      .code(gatewayError.status)
      .type(PROBLEM_CONTENT_TYPE)
      .send(problemDetails(gatewayError, request.id, pathOf(request.url)));
  });

  app.setNotFoundHandler((request, reply) => {
    const error = new GatewayError('NOT_FOUND', `No route for ${request.method} ${pathOf(request.url)}`);
    return reply.code(error.status).type(PROBLEM_CONTENT_TYPE).send(problemDetails(error, request.id));
  });
}

/**
 * One log line per refused request. Only errors the gateway did not anticipate are logged at error
 * level, with their stack; its own refusals (a 503 by policy while a dependency is down, a 429) are
 * expected outcomes: warn for 5xx, info for the client's faults.
 */
export function logRejection(log: FastifyBaseLogger, error: unknown, gatewayError: GatewayError): void {
  if (!(error instanceof GatewayError) && gatewayError.status >= 500) log.error({ err: error }, 'unexpected error');
  else if (gatewayError.status >= 500) log.warn({ code: gatewayError.code }, 'request refused');
  else log.info({ code: gatewayError.code }, 'request rejected');
}
