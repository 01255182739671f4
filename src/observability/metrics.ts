import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { SeriesCounter, SeriesHistogram } from './series-metrics.js';

const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const SIZE_BUCKETS = [100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000];

/** The gateway's metrics, on a registry that is injected (one per gateway, none global). */
export function createMetrics(registry = new Registry()) {
  collectDefaultMetrics({ register: registry });
  const counter = <L extends string>(name: string, help: string, labelNames: L[] = []) =>
    new Counter<L>({ name, help, labelNames, registers: [registry] });
  const gauge = <L extends string>(name: string, help: string, labelNames: L[] = []) =>
    new Gauge<L>({ name, help, labelNames, registers: [registry] });
  const histogram = <L extends string>(name: string, help: string, labelNames: L[], buckets: number[]) =>
    new Histogram<L>({ name, help, labelNames, buckets, registers: [registry] });

  return {
    registry,
    // Updated on every request: series kept by the caller (per route), see series-metrics.ts.
    requests: new SeriesCounter({ name: 'gateway_requests_total', help: 'Requests by method, route template and status', labelNames: ['method', 'route', 'status'], registers: [registry] }),
    requestDuration: new SeriesHistogram({
      name: 'gateway_request_duration_seconds',
      help: 'Request duration by route template',
      labelNames: ['method', 'route'],
      buckets: DURATION_BUCKETS,
      registers: [registry],
    }),
    requestSize: new SeriesHistogram({ name: 'gateway_request_size_bytes', help: 'Declared request body sizes', labelNames: ['route'], buckets: SIZE_BUCKETS, registers: [registry] }),
    responseSize: new SeriesHistogram({ name: 'gateway_response_size_bytes', help: 'Declared response body sizes', labelNames: ['route'], buckets: SIZE_BUCKETS, registers: [registry] }),
    graphqlOperations: counter('gateway_graphql_operations_total', 'GraphQL operations (names beyond the first 100 folded into "other")', [
      'operation_name',
      'operation_type',
      'result',
    ]),
    graphqlOperationCost: histogram(
      'gateway_graphql_operation_cost',
      'Estimated cost of admitted and refused GraphQL operations (demand control)',
      ['operation_type'],
      [1, 10, 100, 1_000, 5_000, 10_000, 50_000, 100_000, 1_000_000],
    ),
    subgraphDuration: histogram('gateway_subgraph_request_duration_seconds', 'Subgraph fetch duration', ['subgraph'], DURATION_BUCKETS),
    subgraphErrors: counter('gateway_subgraph_errors_total', 'Failed subgraph fetches by code', ['subgraph', 'code']),
    authAttempts: counter('gateway_auth_attempts_total', 'Authentication attempts by result (anonymous, jwt, api_key, or the refusal code)', [
      'result',
    ]),
    authCacheHits: counter('gateway_auth_cache_hits_total', 'Bearer tokens answered from the verified-token cache'),
    authCacheMisses: counter('gateway_auth_cache_misses_total', 'Bearer tokens that needed a signature verification'),
    clientErrors: counter('gateway_client_errors_total', 'Requests the HTTP server refused before routing (malformed, too slow, headers too large), by code', ['code']),
    rateLimitExceeded: counter('gateway_rate_limit_exceeded_total', 'Requests refused by a rate limit, by scope (graphql, rest, stream)', ['scope']),
    rateLimitStoreFailovers: counter('gateway_rate_limit_store_failovers_total', 'Times the shared rate limit store became unreachable'),
    upstreamHealth: gauge('gateway_upstream_health', '1 when an upstream instance may receive traffic', ['service', 'instance']),
    circuitBreakerState: gauge('gateway_circuit_breaker_state', 'Circuit breaker state per service: 0 closed, 1 half-open, 2 open', ['service']),
    supergraphReloads: counter('gateway_supergraph_reloads_total', 'Supergraph loads and reloads by result', ['result']),
    supergraphInfo: gauge('gateway_supergraph_info', 'The supergraph being served (value 1, hash as label)', ['hash']),
    sseConnections: gauge('gateway_sse_connections', 'Open event stream connections'),
    sseEventsDelivered: counter('gateway_sse_events_delivered_total', 'Events written to event stream clients'),
    sseEventsDropped: counter('gateway_sse_events_dropped_total', 'Events not delivered because a slow client was disconnected'),
    sseRequestsRefused: counter('gateway_sse_pipelined_requests_refused_total', 'Requests pipelined behind an event-stream request on its connection: refused (400) without being executed'),
  };
}

export type GatewayMetrics = ReturnType<typeof createMetrics>;

/**
 * Operation names come from clients: the label set is bounded by admitting the first `limit`
 * distinct names and folding the rest into "other" (unnamed operations are "anonymous").
 */
export class BoundedLabel {
  private readonly seen = new Set<string>();
  constructor(private readonly limit = 100) {}

  of(value: string | null | undefined): string {
    if (!value) return 'anonymous';
    if (this.seen.has(value)) return value;
    if (this.seen.size >= this.limit || !/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(value)) return 'other';
    this.seen.add(value);
    return value;
  }
}
