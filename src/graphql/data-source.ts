import type { GraphQLDataSource, GraphQLDataSourceProcessOptions } from '@apollo/gateway';
// Apollo's own reading of a subgraph's Cache-Control (not re-exported at the package root).
import { parseCacheControlHeader } from '@apollo/gateway/dist/datasources/parseCacheControlHeader.js';
import { GraphQLError } from 'graphql';
import type { FastifyBaseLogger } from 'fastify';
import { downstreamHeaders, type GatewayContext } from '../context.js';
import { ERRORS, type ErrorCode } from '../errors.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { SubgraphTransportError, type SubgraphEndpoint, type SubgraphResponse } from './subgraph-http.js';

interface GatewayDataSourceOptions {
  name: string;
  endpoint: SubgraphEndpoint;
  logger: FastifyBaseLogger;
  metrics: GatewayMetrics;
}

type ProcessOptions = GraphQLDataSourceProcessOptions<GatewayContext>;
type IncomingOperation = Extract<ProcessOptions, { incomingRequestContext: unknown }>;
type GatewayGraphQLResponse = Awaited<ReturnType<GraphQLDataSource['process']>>;
type CacheHint = { maxAge: number; scope?: 'PUBLIC' | 'PRIVATE' };

/** A failure on the way to a subgraph's answer, with what the log and the client may learn of it. */
class SubgraphFailure extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

/**
 * The one way the gateway talks to a subgraph: pooled keep-alive connections with a timeout (the
 * endpoint), the caller's context as headers set by the gateway alone, and failures turned into
 * GraphQL errors that name the subgraph with a stable code instead of leaking transport details.
 * It implements Apollo's data source interface itself, with what RemoteGraphQLDataSource does that
 * this gateway uses (headers the gateway asks for, Cache-Control hints), and not APQ to subgraphs.
 */
export class GatewayDataSource implements GraphQLDataSource<GatewayContext> {
  readonly name: string;
  private readonly endpoint: SubgraphEndpoint;
  private readonly logger: FastifyBaseLogger;
  private readonly metrics: GatewayMetrics;

  constructor({ name, endpoint, logger, metrics }: GatewayDataSourceOptions) {
    this.name = name;
    this.endpoint = endpoint;
    this.logger = logger;
    this.metrics = metrics;
  }

  /** Times every fetch (metrics, and the request's log line); failures keep their code. */
  async process(options: ProcessOptions): Promise<GatewayGraphQLResponse> {
    const started = performance.now();
    let code: string | undefined;
    try {
      return await this.send(options);
    } catch (error) {
      code = String((error as GraphQLError).extensions?.code ?? 'INTERNAL_SERVER_ERROR');
      throw error;
    } finally {
      const ms = performance.now() - started;
      this.metrics.subgraphDuration.observe({ subgraph: this.name }, ms / 1000);
      if (code) this.metrics.subgraphErrors.inc({ subgraph: this.name, code });
      if ('incomingRequestContext' in options) {
        options.context.subgraphTimings.push({ subgraph: this.name, ms: Math.round(ms * 100) / 100, ...(code ? { code } : {}) });
      }
    }
  }

  private async send(options: ProcessOptions): Promise<GatewayGraphQLResponse> {
    const { query, variables, operationName, extensions } = options.request;
    if (!query) throw new Error('Missing query');
    let response: SubgraphResponse | undefined;
    try {
      response = await this.endpoint.post(requestHeaders(options), JSON.stringify({ query, variables, operationName, extensions }));
      if (response.status < 200 || response.status > 299) {
        throw new SubgraphFailure('SUBGRAPH_HTTP_ERROR', `${response.status}: ${response.statusText}`, response.status);
      }
      const result = graphqlBody(response);
      if ('incomingRequestContext' in options) restrictCachePolicy(options, response);
      return result;
    } catch (error) {
      throw this.clientError(error as Error);
    }
  }

  private clientError(error: Error): GraphQLError {
    const failure = error instanceof SubgraphFailure ? error : asFailure(error);
    const { code, status } = failure;
    this.logger.warn({ subgraph: this.name, code, status, cause: failure.message }, 'subgraph request failed');
    return new GraphQLError(`${ERRORS[code].title}: ${this.name}`, {
      extensions: {
        code,
        serviceName: this.name,
        ...(code === 'SUBGRAPH_HTTP_ERROR' ? { httpStatus: status } : {}),
      },
    });
  }
}

function asFailure(error: Error): SubgraphFailure {
  if (!(error instanceof SubgraphTransportError)) return new SubgraphFailure('SUBGRAPH_BAD_RESPONSE', error.message);
  const status = error.status !== undefined && (error.status < 200 || error.status > 299) ? error.status : undefined;
  if (error.kind === 'timeout') return new SubgraphFailure('SUBGRAPH_TIMEOUT', error.message, error.status);
  // A broken or undecodable answer with an error status is first of all that status.
  if (status !== undefined) return new SubgraphFailure('SUBGRAPH_HTTP_ERROR', error.message, status);
  return new SubgraphFailure(error.kind === 'unavailable' ? 'SUBGRAPH_UNAVAILABLE' : 'SUBGRAPH_BAD_RESPONSE', error.message, error.status);
}

/**
 * Headers of one subgraph call: any the gateway's executor asks for (e.g. federated tracing), the
 * content type, then the caller's context, set by the gateway alone. Health checks and schema loading
 * run without a caller; only operations carry a context.
 */
function requestHeaders(options: ProcessOptions): Record<string, string> {
  const asked = options.request.http?.headers;
  const headers: Record<string, string> =
    'incomingRequestContext' in options ? downstreamHeaders(options.context) : {};
  if (asked) {
    for (const [name, value] of asked) if (!(name in headers)) headers[name] = value;
  }
  headers['content-type'] = 'application/json';
  headers.accept = 'application/json';
  return headers;
}

/** The answer as a GraphQL response object: JSON (either GraphQL media type), parsed once from the bytes. */
function graphqlBody(response: SubgraphResponse): GatewayGraphQLResponse {
  const type = response.headers['content-type'];
  const json =
    typeof type === 'string' && (type.startsWith('application/json') || type.startsWith('application/graphql-response+json'));
  if (!json) throw new SubgraphFailure('SUBGRAPH_BAD_RESPONSE', `expected a JSON body, got content-type ${String(type)}`);
  const body: unknown = JSON.parse(response.body.toString('utf8'));
  if (typeof body !== 'object' || body === null) throw new SubgraphFailure('SUBGRAPH_BAD_RESPONSE', 'the JSON body is not an object');
  return body as GatewayGraphQLResponse;
}

/**
 * A subgraph's Cache-Control narrows the operation's cache policy, as Apollo's RemoteGraphQLDataSource
 * does: without a max-age the answer (and so the whole response) counts as uncacheable.
 */
function restrictCachePolicy(options: IncomingOperation, response: SubgraphResponse): void {
  const policy = options.incomingRequestContext.overallCachePolicy as { restrict?: (hint: CacheHint) => void } | undefined;
  if (typeof policy?.restrict !== 'function') return;
  const header = response.headers['cache-control'];
  const parsed = parseCacheControlHeader(Array.isArray(header) ? header.join(', ') : header);
  const hint: CacheHint = { maxAge: 0 };
  const maxAge = parsed['max-age'];
  if (typeof maxAge === 'string' && /^[0-9]+$/.test(maxAge)) hint.maxAge = Number(maxAge);
  if (parsed.private === true) hint.scope = 'PRIVATE';
  if (parsed.public === true) hint.scope = 'PUBLIC';
  policy.restrict(hint);
}
