import { once } from 'node:events';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { catalogSubgraph } from '../../subgraphs/catalog/index.js';
import { startStack, type Stack } from '../helpers/stack.js';

/**
 * What Node's HTTP server refuses before Fastify routes anything — an unparsable request, headers
 * too large, a request that does not arrive in time — is answered like the gateway's other refusals:
 * problem+json with a stable code, a request id and the security headers, and counted.
 */

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ definitions: [catalogSubgraph()], env: { DEFAULT_TENANT_ID: 'acme', REQUEST_TIMEOUT_MS: '1000' } });
});
afterAll(() => stack.close());

/** Writes `text` on a fresh connection (and nothing more) and returns everything read until the server closes. */
async function exchange(text: string): Promise<{ status: number; headers: Record<string, string>; body: Record<string, unknown> }> {
  const { hostname, port } = new URL(stack.url);
  const socket = connect(Number(port), hostname);
  await once(socket, 'connect');
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  socket.on('error', () => {});
  socket.write(text);
  await once(socket, 'close');
  const [head = '', body = ''] = received.split('\r\n\r\n');
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
  return { status: Number(statusLine.split(' ')[1]), headers, body: JSON.parse(body) as Record<string, unknown> };
}

async function refusals(code: string): Promise<number> {
  const metric = stack.gateway.metrics.registry.getSingleMetric('gateway_client_errors_total');
  if (!metric) return 0;
  return (await metric.get()).values.find((value) => value.labels.code === code)?.value ?? 0;
}

describe("answers to what Node's HTTP server refuses", () => {
  const cases: [string, string, number, string][] = [
    ['an unparsable request line', 'NOT HTTP AT ALL\r\n\r\n', 400, 'BAD_REQUEST'],
    ['headers over the size limit', `GET /health HTTP/1.1\r\nHost: gw.test\r\nx-pad: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'HEADERS_TOO_LARGE'],
    ['headers that stop arriving (REQUEST_TIMEOUT_MS)', 'GET /health HTTP/1.1\r\nHost: gw.test\r\n', 408, 'REQUEST_TIMEOUT'],
  ];

  for (const [label, request, status, code] of cases) {
    it(`${label}: ${status} ${code} as problem+json with the security headers and a request id, counted`, async () => {
      // The security headers every other answer carries, as a normal request shows them.
      const normal = await fetch(`${stack.url}/health`);
      const security = ['x-content-type-options', 'strict-transport-security', 'x-frame-options', 'cross-origin-opener-policy'];
      for (const name of security) expect(normal.headers.get(name), name).not.toBeNull();
      const before = await refusals(code);

      const answer = await exchange(request);
      expect(answer.status).toBe(status);
      expect(answer.headers['content-type']).toBe('application/problem+json');
      expect(answer.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      for (const name of security) expect(answer.headers[name], name).toBe(normal.headers.get(name));
      expect(answer.body).toMatchObject({ status, code, requestId: answer.headers['x-request-id'] });
      expect(await refusals(code)).toBe(before + 1);
    });
  }
});
