import { RemoteGraphQLDataSource, type GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import { GraphQLError } from 'graphql';
import type { FastifyBaseLogger } from 'fastify';
import { downstreamHeaders, type GatewayContext } from '../context.js';
import { ERRORS, type ErrorCode } from '../errors.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { Fetcher } from './subgraph-http.js';

interface GatewayDataSourceOptions {
  name: string;
  url: string;
  fetcher: Fetcher;
  logger: FastifyBaseLogger;
  metrics: GatewayMetrics;
}

/**
 * The one way the gateway talks to a subgraph: pooled keep-alive connections with a timeout (through
 * the injected fetcher), the caller's context as headers set by the gateway alone, and failures turned
 * into GraphQL errors that name the subgraph with a stable code instead of leaking transport details.
 */
export class GatewayDataSource extends RemoteGraphQLDataSource<GatewayContext> {
  readonly name: string;
  private readonly logger: FastifyBaseLogger;
  private readonly metrics: GatewayMetrics;

  constructor({ name, url, fetcher, logger, metrics }: GatewayDataSourceOptions) {
    super({ url, fetcher });
    this.name = name;
    this.logger = logger;
    this.metrics = metrics;
  }

  /** Times every fetch (metrics, and the request's log line); failures keep their code. */
  override async process(options: GraphQLDataSourceProcessOptions<GatewayContext>) {
    const started = performance.now();
    let code: string | undefined;
    try {
      return await super.process(options);
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

  override willSendRequest(options: GraphQLDataSourceProcessOptions<GatewayContext>): void {
    // Health checks and loading run without a caller; only operations carry a context.
    if (!('incomingRequestContext' in options)) return;
    const headers = options.request.http!.headers;
    for (const [name, value] of Object.entries(downstreamHeaders(options.context))) headers.set(name, value);
  }

  override didEncounterError(error: Error, _request: unknown, response?: { ok: boolean; status: number }): never {
    const code = classify(error, response);
    this.logger.warn(
      { subgraph: this.name, code, status: response?.status, cause: error.message },
      'subgraph request failed',
    );
    throw new GraphQLError(`${ERRORS[code].title}: ${this.name}`, {
      extensions: {
        code,
        serviceName: this.name,
        ...(response && !response.ok ? { httpStatus: response.status } : {}),
      },
    });
  }
}

function classify(error: Error, response?: { ok: boolean }): ErrorCode {
  if (error.name === 'TimeoutError' || error.name === 'AbortError') return 'SUBGRAPH_TIMEOUT';
  if (!response) return 'SUBGRAPH_UNAVAILABLE';
  if (!response.ok) return 'SUBGRAPH_HTTP_ERROR';
  return 'SUBGRAPH_BAD_RESPONSE';
}
