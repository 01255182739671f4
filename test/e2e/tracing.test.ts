import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { catalogSubgraph } from '../../subgraphs/catalog/index.js';
import { eventually } from '../helpers/eventually.js';
import { postGraphQL, startStack, type Stack } from '../helpers/stack.js';

/** A real OTLP/HTTP receiver on port 0: it records every export. */
const exports: { resourceSpans?: { scopeSpans?: { spans?: { traceId: string; spanId: string; name: string; parentSpanId?: string }[] }[] }[] }[] = [];
const collector = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    if (request.url === '/v1/traces') exports.push(JSON.parse(Buffer.concat(chunks).toString()));
    response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});

let stack: Stack;
const subgraphHeaders: IncomingHttpHeaders[] = [];

beforeAll(async () => {
  collector.listen(0, '127.0.0.1');
  await once(collector, 'listening');
  const { port } = collector.address() as { port: number };
  stack = await startStack({
    definitions: [catalogSubgraph()],
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, DEFAULT_TENANT_ID: 'acme' },
    configure: { catalog: { configure: (app) => app.addHook('onRequest', async (request) => void subgraphHeaders.push(request.headers)) } },
  });
});
afterAll(async () => {
  await stack.close();
  collector.close();
});

describe('OpenTelemetry tracing (OTLP/HTTP)', () => {
  it('exports a server span continuing the caller trace, and names it as the subgraph call parent', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    await postGraphQL(stack.url, { query: '{ products(first: 1) { upc } }' }, { traceparent: `00-${traceId}-00f067aa0ba902b7-01` });
    const sent = String(subgraphHeaders.at(-1)!.traceparent);
    expect(sent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));

    const spanId = sent.split('-')[2];
    await eventually(() => {
      const spans = exports.flatMap((e) => e.resourceSpans ?? []).flatMap((r) => r.scopeSpans ?? []).flatMap((s) => s.spans ?? []);
      const server = spans.find((span) => span.name === 'POST /graphql' && span.traceId === traceId);
      expect(server).toBeDefined();
      expect(server!.parentSpanId).toBe('00f067aa0ba902b7');
      expect(server!.spanId).toBe(spanId);
    }, 5_000, 100);
  });
});
