import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerErrorCode } from '@apollo/server/errors';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { fastifyApolloHandler } from '@as-integrations/fastify';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest, RouteHandlerMethod } from 'fastify';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import type { RedisClient } from '../stores/redis.js';
import { subgraphOverride } from '../config/load.js';
import type { GatewayConfig } from '../config/schema.js';
import { BoundedLabel, type GatewayMetrics } from '../observability/metrics.js';
import type { GatewayContext } from '../context.js';
import { GatewayError, graphqlErrorBody, wwwAuthenticate } from '../errors.js';
import { logRejection } from '../pipeline/error-handler.js';
import { GatewayDataSource } from './data-source.js';
import { FastApolloGateway } from './execution/fast-gateway.js';
import { isIdeRequest, registerGraphQLIde } from './ide.js';
import { queryTextCheck } from './operation-limits.js';
import { RedisKeyValueCache, TrustedDocuments, sha256 } from './persisted-queries.js';
import { withoutAuthorizationDirectives } from './field-authorization.js';
import { FieldRateLimiter } from './field-rate-limits.js';
import { admissionStage } from './admission/stage.js';
import { buildSnapshot } from './admission/snapshot.js';
import { SubgraphHttpClient } from './subgraph-http.js';
import { SupergraphFile, type SupergraphStatus } from './supergraph-file.js';

export const GRAPHQL_PATH = '/graphql';

export interface GraphQLEndpoint {
  readonly status: () => SupergraphStatus;
  /** Resolves once the first valid supergraph serves; rejects if Apollo cannot start. */
  readonly started: Promise<void>;
}

/**
 * Mounts Apollo Server + Apollo Gateway at `/graphql`. The route exists from the first moment and
 * answers 503 until a supergraph is loaded, so the process can listen (and report liveness) while
 * it waits for a valid supergraph file.
 */
export function registerGraphQL(
  app: FastifyInstance,
  config: GatewayConfig,
  redis: RedisClient | null,
  metrics: GatewayMetrics,
): GraphQLEndpoint {
  const http = new SubgraphHttpClient();
  const admission = admissionStage({
    limits: config.operationLimits,
    rateLimiter: new FieldRateLimiter({
      redis,
      onStoreFailure: config.rateLimits.onStoreFailure,
      fallbackFactor: config.rateLimits.fallbackFactor,
      logger: app.log,
    }),
    observeCost: (type, cost) => metrics.graphqlOperationCost.observe({ operation_type: type }, cost),
    onUnknownSchema: (executableSdl) =>
      app.log.error({ sdlHash: sha256(executableSdl) }, 'the gateway serves a supergraph the admission stage never read; GraphQL requests are refused until it is reloaded'),
  });
  const supergraph = new SupergraphFile({
    path: config.supergraphPath,
    watch: config.supergraphWatch,
    logger: app.log,
    onLoaded: (hash) => {
      metrics.supergraphReloads.inc({ result: 'loaded' });
      metrics.supergraphInfo.reset();
      metrics.supergraphInfo.set({ hash }, 1);
    },
    onRejected: () => metrics.supergraphReloads.inc({ result: 'rejected' }),
    // What the admission stage needs is read from the file's supergraph (with the directives the
    // gateway cannot load), and takes effect with the schema the gateway builds from it.
    prepare: (sdl) => {
      const executable = withoutAuthorizationDirectives(sdl);
      admission.snapshots.stage(executable, buildSnapshot(sdl, config.fieldRateLimits));
      return executable;
    },
  });

  // @apollo/gateway sends anonymous usage data to Apollo over HTTPS unless APOLLO_TELEMETRY_DISABLED is
  // set (its constructor reads only that variable). A self-hosted gateway does not call out unasked:
  // off unless the operator sets APOLLO_TELEMETRY_DISABLED=false.
  process.env.APOLLO_TELEMETRY_DISABLED ??= 'true';
  // Apollo's planning and plan cache, with query plans run by our compiled executor (see execution/).
  const gateway = new FastApolloGateway({
    supergraphSdl: supergraph,
    logger: app.log,
    buildService: ({ name, url }) => {
      const override = subgraphOverride(config, name);
      const target = override.url ?? url;
      if (!target) throw new Error(`Subgraph "${name}" has no routing URL; set SUBGRAPH_${name.toUpperCase()}_URL`);
      return new GatewayDataSource({
        name,
        endpoint: http.endpoint(name, target, {
          timeoutMs: override.timeoutMs ?? config.subgraphTimeoutMs,
          maxResponseBytes: override.maxResponseBytes ?? config.subgraphMaxResponseBytes,
        }),
        logger: app.log,
        metrics,
      });
    },
  });

  gateway.onSchemaLoadOrUpdate(({ apiSchema, coreSupergraphSdl }) => admission.snapshots.activate(apiSchema, coreSupergraphSdl));

  const introspection = config.graphqlIntrospection ?? config.nodeEnv !== 'production';
  const apollo = new ApolloServer<GatewayContext>({
    gateway,
    logger: app.log,
    csrfPrevention: true,
    introspection,
    // Without introspection, "Did you mean …?" hints would leak the schema field by field.
    hideSchemaDetailsFromClientErrors: !introspection,
    persistedQueries: config.persistedQueries ? { cache: redis ? new RedisKeyValueCache(redis) : undefined, ttl: 86_400 } : false,
    includeStacktraceInErrorResponses: false,
    // Shutdown is ours (main.ts drains Fastify, whose onClose stops Apollo); Apollo's own signal
    // handlers would race it and re-raise the signal.
    stopOnTerminationSignals: false,
    formatError: maskUnexpectedErrors(app.log),
    plugins: [
      ApolloServerPluginLandingPageDisabled(),
      admission.plugin,
      operationMetrics(metrics),
      requestIdInErrors(),
    ],
  });

  const idePage = config.graphqlIde ?? config.nodeEnv === 'development' ? registerGraphQLIde(app) : null;
  const trusted = config.trustedDocuments === 'allow-list' ? new TrustedDocuments(config.trustedDocumentsManifest, redis) : null;
  const checkQueryText = queryTextCheck(config.operationLimits);
  let handler: RouteHandlerMethod | null = null;
  const started = apollo.start().then(() => {
    handler = fastifyApolloHandler(apollo, { context: async (request) => request.gateway }) as RouteHandlerMethod;
    app.log.info({ hash: readyHash(supergraph.status) }, 'supergraph loaded, GraphQL is serving');
  });
  started.catch((error: Error) => app.log.error({ reason: error.message }, 'GraphQL failed to start'));

  app.route({
    method: ['GET', 'POST'],
    url: GRAPHQL_PATH,
    config: {
      policy: {
        auth: config.authGraphql === 'required' ? 'authenticated' : 'optional',
        roles: config.authGraphqlRoles,
        permissions: config.authGraphqlPermissions,
        writes: 'graphql-operation',
        // The IDE page itself is static; the operations it sends pass the policy as usual.
        ...(idePage ? { skip: isIdeRequest } : {}),
      },
      rateLimit: { kind: 'graphql' },
    },
    errorHandler: graphqlErrorHandler,
    onSend: requestIdInRefusals,
    // Trusted documents and size checks on the raw text run before Apollo parses anything.
    preHandler: async (request, reply) => {
      if (idePage && isIdeRequest(request)) return reply.type('text/html; charset=utf-8').send(idePage());
      const refuse = (error: GatewayError) => reply.code(error.status).send(graphqlErrorBody(error, request.id));
      if (trusted && !(await admitTrustedDocument(request, trusted))) return refuse(new GatewayError('OPERATION_NOT_TRUSTED'));
      const query = graphqlQueryText(request);
      const refused = query === undefined ? null : checkQueryText(query);
      if (refused) return refuse(refused);
    },
    handler(request, reply) {
      if (!handler) {
        const error = new GatewayError('SUPERGRAPH_NOT_LOADED');
        return reply.code(error.status).send(graphqlErrorBody(error, request.id));
      }
      return handler.call(this, request, reply);
    },
  });

  app.addHook('onClose', async () => {
    supergraph.stop();
    await http.destroy();
    if (handler) await apollo.stop();
  });

  return { status: () => supergraph.status, started };
}

type GraphQLParams = { query?: unknown; extensions?: unknown };

/** Where the operation's fields live: the query string for GET (`extensions` as JSON), the body for POST. */
function graphqlParams(request: FastifyRequest): GraphQLParams | undefined {
  return (request.method === 'GET' ? request.query : request.body) as GraphQLParams | undefined;
}

/**
 * Allow-list check: the document's hash (sent, or computed from the text) must be trusted. A client
 * sending only the hash gets the trusted text filled in. False: refuse with OPERATION_NOT_TRUSTED.
 */
async function admitTrustedDocument(request: FastifyRequest, trusted: TrustedDocuments): Promise<boolean> {
  const params = graphqlParams(request);
  if (!params) return false;
  let extensions = params.extensions;
  if (typeof extensions === 'string') {
    try {
      extensions = JSON.parse(extensions);
    } catch {
      return false;
    }
  }
  const sentHash = (extensions as { persistedQuery?: { sha256Hash?: unknown } } | undefined)?.persistedQuery?.sha256Hash;
  const text = typeof params.query === 'string' ? params.query : undefined;
  const hash = text !== undefined ? sha256(text) : typeof sentHash === 'string' ? sentHash : undefined;
  if (!hash || (text !== undefined && typeof sentHash === 'string' && sentHash !== hash)) return false;
  const body = await trusted.lookup(hash);
  if (body === null) return false;
  params.query = body;
  return true;
}

function graphqlQueryText(request: FastifyRequest): string | undefined {
  const source = graphqlParams(request);
  return typeof source?.query === 'string' ? source.query : undefined;
}

/**
 * Errors raised before Apollo sees the request (body parsing, size, content type) still answer in
 * GraphQL's shape, so GraphQL clients get one error format from this endpoint.
 */
function graphqlErrorHandler(error: Error & { statusCode?: number; code?: string }, request: FastifyRequest, reply: FastifyReply) {
  const gatewayError = GatewayError.from(error);
  logRejection(request.log, error, gatewayError);
  const challenge = wwwAuthenticate(gatewayError);
  if (challenge) reply.header('www-authenticate', challenge);
  return reply.code(gatewayError.status).send(graphqlErrorBody(gatewayError, request.id));
}

/**
 * Apollo refuses some requests (CSRF, malformed GET parameters, batching, a body without `query`)
 * before any plugin runs, and `formatError` cannot see the request: those error bodies get the
 * request id here, once final. Only error statuses are read, so normal responses cost nothing.
 */
async function requestIdInRefusals(request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> {
  if (reply.statusCode < 400 || typeof payload !== 'string' || !payload.startsWith('{')) return payload;
  let body: { errors?: unknown };
  try {
    body = JSON.parse(payload) as { errors?: unknown };
  } catch {
    return payload;
  }
  if (!Array.isArray(body.errors)) return payload;
  const errors = body.errors as GraphQLFormattedError[];
  if (errors.every((error) => error.extensions?.requestId === request.id)) return payload;
  body.errors = errors.map((error) => ({ ...error, extensions: { ...error.extensions, requestId: request.id } }));
  return JSON.stringify(body);
}

/**
 * Unexpected errors never reach the client with their message: they are logged and replaced.
 * Apollo Server refuses some malformed requests (APQ hash mismatch, unsupported APQ version) with an
 * HTTP 4xx but no code, which its error normalisation then labels INTERNAL_SERVER_ERROR. Those are the
 * client's mistake, so they answer Apollo's BAD_REQUEST with Apollo's own message and are logged at
 * debug only: anyone can send them, and an error line with a stack per request would be a log flood.
 */
export function maskUnexpectedErrors(logger: Pick<FastifyBaseLogger, 'debug' | 'error'>) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const code = formatted.extensions?.code;
    const fromSubgraph = formatted.extensions?.serviceName !== undefined;
    if (code !== 'INTERNAL_SERVER_ERROR' || fromSubgraph) return formatted;
    if (isUncodedClientRefusal(error)) {
      logger.debug({ reason: formatted.message }, 'GraphQL request refused');
      return { message: formatted.message, extensions: { code: ApolloServerErrorCode.BAD_REQUEST } };
    }
    const original = error instanceof GraphQLError ? (error.originalError ?? error) : error;
    logger.error({ err: original }, 'unexpected error while executing a GraphQL operation');
    return { message: 'Internal server error', path: formatted.path, extensions: { code } };
  };
}

/**
 * A GraphQL error raised with a 4xx HTTP status but no code: Apollo Server's refusal of a malformed
 * request. Duck-typed (not `instanceof`) so a second copy of graphql-js cannot turn it into a 500.
 */
function isUncodedClientRefusal(error: unknown): boolean {
  if (typeof error !== 'object' || error === null || !('extensions' in error)) return false;
  const extensions = (error as { extensions?: { code?: unknown; http?: { status?: unknown } } }).extensions;
  const status = extensions?.http?.status;
  return extensions?.code === undefined && typeof status === 'number' && status >= 400 && status < 500;
}

/** Counts operations by (bounded) name, type and result. */
function operationMetrics(metrics: GatewayMetrics): ApolloServerPlugin<GatewayContext> {
  const names = new BoundedLabel(100);
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ response, operation, request }) {
          const errors = response.body.kind === 'single' ? response.body.singleResult.errors : undefined;
          const data = response.body.kind === 'single' ? response.body.singleResult.data : undefined;
          const result = !errors?.length ? 'success' : data ? 'partial' : 'error';
          metrics.graphqlOperations.inc({
            operation_name: names.of(operation?.name?.value ?? request.operationName),
            operation_type: operation?.operation ?? 'unknown',
            result,
          });
        },
      };
    },
  };
}

/** Tags every GraphQL error with the request id, so a client report can be matched to our logs. */
function requestIdInErrors(): ApolloServerPlugin<GatewayContext> {
  return {
    async requestDidStart({ contextValue }) {
      return {
        async willSendResponse({ response }) {
          if (response.body.kind !== 'single' || !response.body.singleResult.errors) return;
          const requestId = contextValue.requestId;
          response.body.singleResult.errors = response.body.singleResult.errors.map((error) => ({
            ...error,
            extensions: { ...error.extensions, requestId },
          }));
        },
      };
    },
  };
}

function readyHash(status: SupergraphStatus): string | undefined {
  return status.state === 'ready' ? status.hash : undefined;
}
