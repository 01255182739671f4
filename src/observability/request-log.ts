import { pino } from 'pino';
import { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { GatewayMetrics } from './metrics.js';
import type { CounterSeries, HistogramSeries } from './series-metrics.js';
import { DeferredChildLogger } from './request-logger.js';
import { routeOf } from '../pipeline/caller-context.js';

const LOG_BATCH_BYTES = 4_096;
const LOG_FLUSH_MS = 200;

/**
 * Where the gateway's JSON lines go: stdout through an asynchronous pino destination. A synchronous
 * write per request blocked the event loop on every line (slow pipes and log collectors included);
 * this one writes lines in batches of at least LOG_BATCH_BYTES (one `write` per ~15 request lines
 * under load instead of one each: ~4% of a proxied request), and at least every LOG_FLUSH_MS when
 * traffic is light, so a line is never held longer than that. It is flushed synchronously when a
 * drain starts (flushLogDestination), on process exit (main.ts exits after the drain) and on a crash.
 */
export type LogDestination = ReturnType<typeof pino.destination>;

export function gatewayLogDestination(): LogDestination {
  return pino.destination({ dest: 1, sync: false, minLength: LOG_BATCH_BYTES, periodicFlush: LOG_FLUSH_MS });
}

/**
 * Writes out what the destination holds, synchronously. Called when a drain starts: an orchestrator
 * may SIGKILL the process mid-drain, and the "shutting down" line and the last request lines would
 * otherwise die in the batch. Lines logged during the drain are exposed for LOG_FLUSH_MS, as always.
 */
export function flushLogDestination(destination: LogDestination): void {
  try {
    destination.flushSync();
  } catch {
    // Not open yet or already closed: nothing to write, and pino's exit handler flushes again.
  }
}
/**
 * One log line per request, at completion: request id, method, route template, path (never the
 * query string: tokens and tickets travel there), status, duration, tenant, user and the subgraph
 * timings of a GraphQL request. Headers and bodies are never logged.
 */
export class GatewayLogController extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const context = request.gateway;
    const log = request.log;
    const url = request.raw.url ?? '';
    const queryAt = url.indexOf('?');
    const line = {
      method: request.method,
      route: routeLabel(request),
      path: queryAt === -1 ? url : url.slice(0, queryAt),
      status: reply.statusCode,
      durationMs: Math.round(reply.elapsedTime * 100) / 100,
      tenant: context?.principal.tenantId ?? undefined,
      userId: context?.principal.id ?? undefined,
      ...(context?.graphql.estimatedCost !== undefined ? { estimatedCost: context.graphql.estimatedCost } : {}),
      ...(context?.subgraphTimings.length ? { subgraphs: context.subgraphTimings } : {}),
      ...(error ? { error: error.message } : {}),
    };
    if (log instanceof DeferredChildLogger) log.infoWithBindings(line, 'request completed');
    else log.info(line, 'request completed');
  }
}

/** Route templates, never raw paths: ids in URLs must not explode the label set. */
export function routeLabel(request: FastifyRequest): string {
  return routeOf(request).url ?? 'unmatched';
}

/** The series one route's requests of one method update: found once, then kept. */
interface RouteSeries {
  readonly duration: HistogramSeries;
  readonly requestSize: HistogramSeries;
  readonly responseSize: HistogramSeries;
  readonly byStatus: Map<number, CounterSeries>;
}

export function installRequestMetrics(app: FastifyInstance, metrics: GatewayMetrics): void {
  const byRoute = new Map<string, Map<string, RouteSeries>>();
  const seriesOf = (method: string, route: string): RouteSeries => {
    let byMethod = byRoute.get(route);
    if (!byMethod) {
      byMethod = new Map();
      byRoute.set(route, byMethod);
    }
    let series = byMethod.get(method);
    if (!series) {
      series = {
        duration: metrics.requestDuration.series({ method, route }),
        requestSize: metrics.requestSize.series({ route }),
        responseSize: metrics.responseSize.series({ route }),
        byStatus: new Map(),
      };
      byMethod.set(method, series);
    }
    return series;
  };
  // A callback hook, not an async one: no promise per response.
  app.addHook('onResponse', (request, reply, done) => {
    const route = routeLabel(request);
    const series = seriesOf(request.method, route);
    const status = reply.statusCode;
    let requests = series.byStatus.get(status);
    if (!requests) {
      requests = metrics.requests.series({ method: request.method, route, status: String(status) });
      series.byStatus.set(status, requests);
    }
    requests.value++;
    series.duration.observe(reply.elapsedTime / 1000);
    const requestLength = Number(request.headers['content-length']);
    if (requestLength > 0) series.requestSize.observe(requestLength);
    const responseLength = Number(reply.getHeader('content-length'));
    if (responseLength > 0) series.responseSize.observe(responseLength);
    done();
  });
}

/**
 * Counts a request whose response never finishes through Node, so onResponse never runs for it: an
 * event stream, which ends with its connection. Its owner calls this then (rarely: series looked up).
 */
export function recordUnfinishedRequest(metrics: GatewayMetrics, request: FastifyRequest, statusCode: number, seconds: number): void {
  const route = routeLabel(request);
  metrics.requests.series({ method: request.method, route, status: String(statusCode) }).value++;
  metrics.requestDuration.series({ method: request.method, route }).observe(seconds);
}
