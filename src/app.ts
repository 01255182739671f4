import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { GatewayConfig } from './config/schema.js';
import { anonymousPrincipal } from './context.js';
import { registerGraphQL, type GraphQLEndpoint } from './graphql/endpoint.js';
import { registerHealthRoutes } from './health/routes.js';
import { installCallerContext, type PrincipalResolver } from './pipeline/caller-context.js';
import { installProblemErrors } from './pipeline/error-handler.js';
import { requestIdFor } from './pipeline/request-id.js';

export interface BuildOptions {
  /** Fastify logger options; defaults to JSON logs at the configured level. */
  logger?: FastifyServerOptions['logger'];
  /** Who is calling. Defaults to an anonymous caller in `defaultTenantId`. */
  resolvePrincipal?: PrincipalResolver;
}

export interface Gateway {
  app: FastifyInstance;
  graphql: GraphQLEndpoint;
  /** Flip readiness to 503 before closing, so load balancers stop sending traffic first. */
  beginShutdown(): void;
}

/**
 * Builds the gateway. The pipeline is registered here, in request order:
 * request id → caller context (identity headers stripped, principal, trace context) → destinations.
 */
export function buildGateway(config: GatewayConfig, options: BuildOptions = {}): Gateway {
  const app = Fastify({
    logger: options.logger ?? { level: config.logLevel },
    genReqId: requestIdFor,
    requestIdHeader: false,
    bodyLimit: config.bodyLimitBytes,
  });

  const defaultPrincipal = anonymousPrincipal(config.defaultTenantId ?? null);
  installProblemErrors(app);
  installCallerContext(app, options.resolvePrincipal ?? (() => defaultPrincipal));

  const graphql = registerGraphQL(app, config);

  let shuttingDown = false;
  registerHealthRoutes(app, { supergraphStatus: graphql.status, isShuttingDown: () => shuttingDown });
  // While draining, answer in-flight requests with `Connection: close` so keep-alive clients let go
  // and the server can finish closing as soon as the last response is out.
  app.addHook('onSend', async (_request, reply) => {
    if (shuttingDown) reply.header('connection', 'close');
  });

  return {
    app,
    graphql,
    beginShutdown: () => {
      shuttingDown = true;
    },
  };
}
