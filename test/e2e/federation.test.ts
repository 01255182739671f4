import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { postGraphQL, startStack, type Stack } from '../helpers/stack.js';

// Callers are real signed tokens from the test identity provider.
const alice = { sub: 'u-acme-1', tenant_id: 'acme', roles: ['admin'], permissions: ['read:orders', 'write:orders'] };
const grace = { sub: 'u-globex-1', tenant_id: 'globex', roles: ['viewer'], permissions: [] };
let caller: Record<string, unknown> | null = alice;
let stack: Stack;

/** POST /graphql as the current caller (a bearer token, or none when anonymous). */
async function query(body: unknown, headers: Record<string, string> = {}) {
  const auth = caller ? await stack.bearer(caller) : {};
  return postGraphQL(stack.url, body, { ...auth, ...headers });
}
const subgraphHeaders: Record<string, Record<string, string | string[] | undefined>[]> = {};
let accountsConnections = 0;

beforeAll(async () => {
  stack = await startStack({
    configure: {
      accounts: {
        configure: (app) => {
          app.server.on('connection', () => accountsConnections++);
          app.addHook('onRequest', async (request) => {
            (subgraphHeaders.accounts ??= []).push({ ...request.headers });
          });
        },
      },
    },
  });
});
afterAll(() => stack.close());
beforeEach(() => {
  caller = alice;
  subgraphHeaders.accounts = [];
});

const NESTED = `
  query Nested {
    orders {
      id
      buyer { id name email }
      items { quantity product { upc name price inStock shippingEstimate } }
    }
  }`;

describe('federated queries', () => {
  it('resolves a nested query across all four subgraphs (@key, @requires, @provides)', async () => {
    const { status, body } = await query({ query: NESTED });
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
    expect(body.data).toEqual({
      orders: [
        {
          id: 'o-acme-1',
          buyer: { id: 'u-acme-1', name: 'Alice Adams', email: 'alice@acme.test' },
          items: [
            { quantity: 1, product: { upc: 'acme-anvil', name: 'Anvil', price: 4999, inStock: true, shippingEstimate: 4500 } },
            { quantity: 2, product: { upc: 'acme-skates', name: 'Rocket Skates', price: 12999, inStock: false, shippingEstimate: 0 } },
          ],
        },
        {
          id: 'o-acme-2',
          buyer: { id: 'u-acme-2', name: 'Bob Brown', email: 'bob@acme.test' },
          items: [{ quantity: 1, product: { upc: 'acme-magnet', name: 'Giant Magnet', price: 2999, inStock: true, shippingEstimate: 800 } }],
        },
      ],
    });
  });

  it('resolves entities in the other direction (user → orders → products)', async () => {
    const { body } = await query({ query: '{ me { name orders { id items { product { name } } } } }' });
    expect(body.data).toEqual({
      me: { name: 'Alice Adams', orders: [{ id: 'o-acme-1', items: [{ product: { name: 'Anvil' } }, { product: { name: 'Rocket Skates' } }] }] },
    });
  });

  it('runs mutations and later reads see their effect', async () => {
    const placed = await query({
      query: 'mutation Place($items: [OrderItemInput!]!) { placeOrder(items: $items) { id buyer { name } items { quantity product { name } } } }',
      variables: { items: [{ upc: 'acme-magnet', quantity: 3 }] },
    });
    expect(placed.body.errors).toBeUndefined();
    const order = (placed.body.data as { placeOrder: { id: string } }).placeOrder;
    expect(order).toMatchObject({ buyer: { name: 'Alice Adams' }, items: [{ quantity: 3, product: { name: 'Giant Magnet' } }] });

    const read = await query({ query: 'query($id: ID!) { order(id: $id) { id } }', variables: { id: order.id } });
    expect(read.body.data).toEqual({ order: { id: order.id } });

    const restock = await query({ query: 'mutation { restock(upc: "acme-skates", quantity: 5) { name quantity inStock } }' });
    expect(restock.body.data).toEqual({ restock: { name: 'Rocket Skates', quantity: 5, inStock: true } });
  });
});

describe('tenant isolation', () => {
  it("never shows one tenant's data to another", async () => {
    caller = grace;
    const globex = await query({ query: '{ orders { id buyer { name } } users { id } products { upc } }' });
    expect(globex.body.data).toEqual({
      orders: [{ id: 'o-globex-1', buyer: { name: 'Grace Green' } }],
      users: [{ id: 'u-globex-1' }, { id: 'u-globex-2' }],
      products: [{ upc: 'globex-lamp' }, { upc: 'globex-chair' }],
    });
    // Direct lookups of another tenant's ids find nothing.
    const probe = await query({ query: '{ order(id: "o-acme-1") { id } user(id: "u-acme-1") { id } product(upc: "acme-anvil") { upc } }' });
    expect(probe.body.data).toEqual({ order: null, user: null, product: null });
  });

  it('a client-sent x-tenant-id cannot switch to a tenant the token does not grant', async () => {
    caller = grace;
    const { status, body } = await query({ query: '{ orders { id } }' }, { 'x-tenant-id': 'acme' });
    expect(status).toBe(403);
    expect(body.errors?.[0]?.extensions?.code).toBe('TENANT_ACCESS_DENIED');
  });

  it('an anonymous caller without a tenant gets no tenant data', async () => {
    caller = null;
    const { body } = await query({ query: '{ orders { id } }' });
    expect(body.data).toBeNull();
    expect(body.errors?.[0]?.extensions).toMatchObject({ code: 'TENANT_REQUIRED', serviceName: 'orders' });
  });
});

describe('caller context sent to subgraphs', () => {
  it('carries identity set by the gateway, and drops spoofed identity headers', async () => {
    const { body, headers } = await query(
      { query: '{ whoami { userId tenantId roles permissions requestId traceparent } }' },
      { 'x-user-id': 'mallory', 'x-user-roles': 'superadmin', 'x-user-permissions': 'everything', 'x-gateway-context': 'forged' },
    );
    expect(body.data?.whoami).toMatchObject({
      userId: 'u-acme-1',
      tenantId: 'acme',
      roles: ['admin'],
      permissions: ['read:orders', 'write:orders'],
      requestId: headers.get('x-request-id'),
    });
    const seen = subgraphHeaders.accounts!.at(-1)!;
    expect(seen['x-user-id']).toBe('u-acme-1');
    expect(seen['x-user-roles']).toBe('admin');
  });

  it('an anonymous caller sends no identity at all, whatever the client claims', async () => {
    caller = null;
    await query({ query: '{ whoami { userId } }' }, { 'x-user-id': 'mallory', 'x-user-roles': 'admin' });
    const seen = subgraphHeaders.accounts!.at(-1)!;
    expect(seen['x-user-id']).toBeUndefined();
    expect(seen['x-user-roles']).toBeUndefined();
    expect(seen['x-tenant-id']).toBeUndefined();
  });

  it('generates a request id when none is sent, echoes it, and forwards it', async () => {
    const { headers } = await query({ query: '{ whoami { requestId } }' });
    const id = headers.get('x-request-id');
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(subgraphHeaders.accounts!.at(-1)!['x-request-id']).toBe(id);
  });

  it('keeps a well-formed client request id and replaces a malformed one', async () => {
    const kept = await query({ query: '{ whoami { requestId } }' }, { 'x-request-id': 'client-abc.123' });
    expect(kept.headers.get('x-request-id')).toBe('client-abc.123');
    expect(kept.body.data?.whoami).toEqual({ requestId: 'client-abc.123' });

    const replaced = await query({ query: '{ whoami { requestId } }' }, { 'x-request-id': 'bad id\twith spaces' });
    expect(replaced.headers.get('x-request-id')).not.toContain(' ');
  });

  it('continues the caller trace: same trace id, the gateway as parent span', async () => {
    const incoming = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const { body } = await query({ query: '{ whoami { traceparent } }' }, { traceparent: incoming });
    const sent = (body.data?.whoami as { traceparent: string }).traceparent;
    expect(sent).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
    expect(sent).not.toBe(incoming);
  });

  it('reuses keep-alive connections to subgraphs instead of connecting per request', async () => {
    const before = accountsConnections;
    for (let i = 0; i < 20; i++) await query({ query: '{ whoami { requestId } }' });
    expect(accountsConnections - before).toBeLessThanOrEqual(2);
  });
});
