import { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { GatewayMetrics } from './metrics.js';
import type { CounterSeries, HistogramSeries } from './series-metrics.js';
import { DeferredChildLogger, REQUEST_ID_LOG_LABEL } from './request-logger.js';
import { routeOf } from '../pipeline/caller-context.js';
import { pathOf } from '../pipeline/path-guard.js';

/**
 * One log line per request, at completion: request id, method, route template, path (never the
 * query string: tokens and tickets travel there), status, duration, tenant, user and the subgraph
 * timings of a GraphQL request. Headers and bodies are never logged.
 */
export class GatewayLogController extends LogController {
  constructor() {
    // The request log line writes this field itself when it skips the child logger (below).
    super({ requestIdLogLabel: REQUEST_ID_LOG_LABEL });
  }

  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const context = request.gateway;
    const log = request.log;
    // Through the parent logger, the line names its request id itself (the child would add it).
    const parent = log instanceof DeferredChildLogger ? log.unboundParent : null;
    // One object literal of one shape for every request: pino leaves out undefined fields, so the
    // line is the same as with conditional spreads, without their intermediate objects. (A literal
    // key, not [REQUEST_ID_LOG_LABEL]: V8 builds literals with computed keys the slow way.)
    const line: { [REQUEST_ID_LOG_LABEL]: string | undefined } & Record<string, unknown> = {
      reqId: parent ? request.id : undefined,
      method: request.method,
      route: routeLabel(request),
      path: pathOf(request.raw.url ?? ''),
      status: reply.statusCode,
      durationMs: Math.round(reply.elapsedTime * 100) / 100,
      tenant: context?.principal.tenantId ?? undefined,
      userId: context?.principal.id ?? undefined,
      estimatedCost: context?.graphql.estimatedCost,
      subgraphs: context?.subgraphTimings.length ? context.subgraphTimings : undefined,
      error: error ? error.message : undefined,
    };
    (parent ?? log).info(line, 'request completed');
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
