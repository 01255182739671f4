import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Span,
  type TextMapGetter,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { routeLabel } from './request-log.js';

declare module 'fastify' {
  interface FastifyRequest {
    span: Span | null;
  }
}

const headerGetter: TextMapGetter<Record<string, string | string[] | undefined>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
};

/**
 * OpenTelemetry tracing, exported over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Each
 * request gets a server span continuing the caller's W3C trace, and the `traceparent` sent to
 * subgraphs and upstreams names that span as parent. Unset, nothing is installed: the pipeline's own
 * traceparent (a random child id) costs a few bytes of randomness per request and no SDK at all.
 */
export function installTracing(app: FastifyInstance, endpoint: string | undefined, serviceName: string): void {
  if (!endpoint) return;
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${endpoint.replace(/\/$/, '')}/v1/traces` }), { scheduledDelayMillis: 500 })],
  });
  const propagator = new W3CTraceContextPropagator();
  const tracer = provider.getTracer('federated-gateway');
  app.decorateRequest('span', null);

  app.addHook('onRequest', async (request) => {
    const parent = propagator.extract(ROOT_CONTEXT, request.raw.headers, headerGetter);
    const span = tracer.startSpan(
      `${request.method} ${routeLabel(request)}`,
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': request.method, 'http.route': routeLabel(request), 'gateway.request_id': request.id } },
      parent,
    );
    request.span = span;
    const carrier: Record<string, string> = {};
    propagator.inject(trace.setSpan(ROOT_CONTEXT, span), carrier, { set: (c, k, v) => (c[k] = v) });
    if (carrier.traceparent) request.gateway = { ...request.gateway, traceparent: carrier.traceparent };
  });
  app.addHook('onResponse', async (request, reply) => endServerSpan(request, reply.statusCode));
  app.addHook('onClose', async () => provider.shutdown());
  // Registered globally too, so Apollo Gateway's own spans (planning, fetches) are exported.
  provider.register({ propagator });
}

/**
 * Ends the request's server span (if tracing is on) with its status and tenant. Runs at onResponse;
 * an event stream, whose response never finishes through Node, calls it when its connection closes.
 */
export function endServerSpan(request: FastifyRequest, statusCode: number): void {
  const span = request.span;
  if (!span) return;
  const principal = request.gateway?.principal;
  span.setAttributes({
    'http.response.status_code': statusCode,
    ...(principal?.tenantId ? { 'gateway.tenant': principal.tenantId } : {}),
  });
  if (statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}
