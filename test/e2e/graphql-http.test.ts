import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../helpers/stack.js';
import { catalogSubgraph } from '../../subgraphs/catalog/index.js';
import { ordersSubgraph } from '../../subgraphs/orders/index.js';
import { accountsSubgraph } from '../../subgraphs/accounts/index.js';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({
    definitions: [accountsSubgraph(), catalogSubgraph(), ordersSubgraph()],
    env: { BODY_LIMIT_BYTES: '4096', DEFAULT_TENANT_ID: 'acme' },
  });
});
afterAll(() => stack.close());

async function send(init: RequestInit & { path?: string }) {
  const response = await fetch(`${stack.url}${init.path ?? '/graphql'}`, init);
  const text = await response.text();
  return { status: response.status, type: response.headers.get('content-type') ?? '', body: JSON.parse(text) as any };
}
const json = { 'content-type': 'application/json' };

describe('GraphQL over HTTP', () => {
  it('GET runs queries (with a CSRF-safe header)', async () => {
    const query = encodeURIComponent('{ products(first: 1) { name } }');
    const res = await send({ method: 'GET', path: `/graphql?query=${query}`, headers: { 'apollo-require-preflight': 'true' } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ data: { products: [{ name: 'Anvil' }] } });
  });

  it('CSRF prevention: a "simple" GET without a preflight header is refused', async () => {
    const query = encodeURIComponent('{ products { name } }');
    const res = await send({ method: 'GET', path: `/graphql?query=${query}` });
    expect(res.status).toBe(400);
    expect(res.body.errors[0].extensions.code).toBe('BAD_REQUEST');
  });

  it('GET never executes a mutation', async () => {
    const query = encodeURIComponent('mutation { placeOrder(items: [{ upc: "acme-anvil", quantity: 1 }]) { id } }');
    const res = await send({ method: 'GET', path: `/graphql?query=${query}`, headers: { 'apollo-require-preflight': 'true' } });
    expect(res.status).toBe(405);
    expect(res.body.errors[0].message).toMatch(/GET/);
  });

  it('answers application/graphql-response+json when asked', async () => {
    const res = await fetch(`${stack.url}/graphql`, {
      method: 'POST',
      headers: { ...json, accept: 'application/graphql-response+json' },
      body: JSON.stringify({ query: '{ products(first: 1) { upc } }' }),
    });
    expect(res.headers.get('content-type')).toMatch(/^application\/graphql-response\+json/);
    expect(await res.json()).toEqual({ data: { products: [{ upc: 'acme-anvil' }] } });
  });

  it('malformed JSON → 400 with a GraphQL error', async () => {
    const res = await send({ method: 'POST', headers: json, body: '{"query": "{ products { name }"' });
    expect(res.status).toBe(400);
    expect(res.body.errors[0].extensions).toMatchObject({ code: 'BAD_REQUEST' });
    expect(res.body.errors[0].extensions.requestId).toBeTruthy();
  });

  it('missing query → 400', async () => {
    const res = await send({ method: 'POST', headers: json, body: JSON.stringify({ variables: {} }) });
    expect(res.status).toBe(400);
    expect(res.body.errors[0].extensions.code).toBe('BAD_REQUEST');
  });

  it('syntax error → 400 GRAPHQL_PARSE_FAILED', async () => {
    const res = await send({ method: 'POST', headers: json, body: JSON.stringify({ query: '{ products { ' }) });
    expect(res.status).toBe(400);
    expect(res.body.errors[0].extensions.code).toBe('GRAPHQL_PARSE_FAILED');
  });

  it('unknown field → 400 GRAPHQL_VALIDATION_FAILED', async () => {
    const res = await send({ method: 'POST', headers: json, body: JSON.stringify({ query: '{ nope }' }) });
    expect(res.status).toBe(400);
    expect(res.body.errors[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  it('unknown operation name → 400', async () => {
    const res = await send({
      method: 'POST',
      headers: json,
      body: JSON.stringify({ query: 'query A { products { upc } }', operationName: 'B' }),
    });
    expect(res.status).toBe(400);
    expect(res.body.errors[0].extensions.code).toBe('OPERATION_RESOLUTION_FAILURE');

    const ambiguous = await send({ method: 'POST', headers: json, body: JSON.stringify({ query: 'query A { products { upc } } query B { products { upc } }' }) });
    expect(ambiguous.status).toBe(400);
    expect(ambiguous.body.errors[0].extensions.code).toBe('OPERATION_RESOLUTION_FAILURE');
  });

  it('unsupported content type → 415', async () => {
    const res = await send({ method: 'POST', headers: { 'content-type': 'application/xml' }, body: '<query/>' });
    expect(res.status).toBe(415);
    expect(res.body.errors[0].extensions.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('a text/plain POST (a CSRF vector) is refused', async () => {
    const res = await send({ method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{"query":"{ products { upc } }"}' });
    expect(res.status).toBe(400);
  });

  it('body over the limit → 413', async () => {
    const res = await send({ method: 'POST', headers: json, body: JSON.stringify({ query: `{ products { upc } } #${'x'.repeat(5000)}` }) });
    expect(res.status).toBe(413);
    expect(res.body.errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('other routes answer problem+json', async () => {
    const res = await send({ method: 'GET', path: '/nope?token=secret' });
    expect(res.status).toBe(404);
    expect(res.type).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ status: 404, code: 'NOT_FOUND' });
    expect(JSON.stringify(res.body)).not.toContain('secret');
  });

  it('still serves normally after all that', async () => {
    const res = await send({ method: 'POST', headers: json, body: JSON.stringify({ query: '{ products(first: 1) { upc } }' }) });
    expect(res.body).toEqual({ data: { products: [{ upc: 'acme-anvil' }] } });
  });
});

/** One error response: its status, its `x-request-id` header and the ids its GraphQL errors carry. */
async function errorIds(path: string, init: RequestInit) {
  const response = await fetch(`${stack.url}${path}`, init);
  const body = (await response.json()) as { errors?: { extensions?: { requestId?: unknown } }[] };
  return {
    status: response.status,
    header: response.headers.get('x-request-id'),
    ids: (body.errors ?? []).map((error) => error.extensions?.requestId),
  };
}

describe('every /graphql error carries extensions.requestId (the x-request-id header)', () => {
  const preflight = { 'apollo-require-preflight': 'true' };
  const get = (query: string, extra = '') => `/graphql?query=${encodeURIComponent(query)}${extra}`;
  const cases: [name: string, status: number, path: string, init: RequestInit][] = [
    ['CSRF refusal of a simple GET', 400, get('{ products { name } }'), { method: 'GET' }],
    ['CSRF refusal of a text/plain POST', 400, '/graphql', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{"query":"{ products { upc } }"}' }],
    ['GET mutation', 405, get('mutation { placeOrder(items: []) { id } }'), { method: 'GET', headers: preflight }],
    ['GET with malformed variables', 400, get('{ products { name } }', '&variables=%7B'), { method: 'GET', headers: preflight }],
    ['malformed JSON body', 400, '/graphql', { method: 'POST', headers: json, body: '{"query": "{ products { name }"' }],
    ['empty JSON body', 400, '/graphql', { method: 'POST', headers: json, body: '' }],
    ['unsupported media type', 415, '/graphql', { method: 'POST', headers: { 'content-type': 'application/xml' }, body: '<query/>' }],
    ['body without a query', 400, '/graphql', { method: 'POST', headers: json, body: '{}' }],
    ['query that is not a string', 400, '/graphql', { method: 'POST', headers: json, body: '{"query":1}' }],
    ['batched operations', 400, '/graphql', { method: 'POST', headers: json, body: '[{"query":"{ products { upc } }"}]' }],
    ['body over the limit', 413, '/graphql', { method: 'POST', headers: json, body: JSON.stringify({ query: `{ products { upc } } #${'x'.repeat(5000)}` }) }],
    ['syntax error', 400, '/graphql', { method: 'POST', headers: json, body: JSON.stringify({ query: '{ products { ' }) }],
    ['malformed bearer token', 401, '/graphql', { method: 'POST', headers: { ...json, authorization: 'Bearer not-a-jwt' }, body: JSON.stringify({ query: '{ products { upc } }' }) }],
  ];

  it.each(cases)('%s', async (_name, status, path, init) => {
    const res = await errorIds(path, init);
    expect(res.status).toBe(status);
    expect(res.header).toBeTruthy();
    expect(res.ids.length).toBeGreaterThan(0);
    for (const id of res.ids) expect(id).toBe(res.header);
  });

  it('echoes a well-formed client x-request-id in the CSRF refusal', async () => {
    const res = await errorIds(get('{ products { name } }'), { method: 'GET', headers: { 'x-request-id': 'client-abc-123' } });
    expect(res).toEqual({ status: 400, header: 'client-abc-123', ids: ['client-abc-123'] });
  });
});

describe('health', () => {
  it('liveness and readiness answer 200 with a loaded supergraph', async () => {
    expect((await send({ method: 'GET', path: '/health' })).body).toMatchObject({ status: 'ok' });
    const ready = await send({ method: 'GET', path: '/health/ready' });
    expect(ready.status).toBe(200);
    expect(ready.body.supergraph.hash).toMatch(/^[0-9a-f]{64}$/);
  });
});
