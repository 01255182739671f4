import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../src/graphql/persisted-queries.js';
import { catalogSubgraph } from '../../subgraphs/catalog/index.js';
import { postGraphQL, startStack, type Stack } from '../helpers/stack.js';
import { sharedRedisUrl } from '../helpers/shared-redis.js';

const REDIS_URL = sharedRedisUrl(15);
const KNOWN = '{ products(first: 1) { upc } }';
const persisted = (query: string) => ({ persistedQuery: { version: 1, sha256Hash: sha256(query) } });

beforeAll(async () => {
  const redis = new Redis(REDIS_URL);
  await redis.flushdb();
  redis.disconnect();
});

describe('Automatic Persisted Queries, shared through Redis', () => {
  let first: Stack;
  let second: Stack;
  beforeAll(async () => {
    const env = { REDIS_URL, DEFAULT_TENANT_ID: 'acme' };
    first = await startStack({ definitions: [catalogSubgraph()], env });
    second = await startStack({ definitions: [catalogSubgraph()], env });
  });
  afterAll(async () => {
    await first.close();
    await second.close();
  });

  it('registers on one instance and is served by hash on another', async () => {
    const query = '{ products(first: 2) { name } }';
    const miss = await postGraphQL(first.url, { extensions: persisted(query) });
    expect(miss.body.errors?.[0]?.extensions?.code).toBe('PERSISTED_QUERY_NOT_FOUND');

    const register = await postGraphQL(first.url, { query, extensions: persisted(query) });
    expect(register.body.data).toEqual({ products: [{ name: 'Anvil' }, { name: 'Rocket Skates' }] });

    const byHash = await postGraphQL(second.url, { extensions: persisted(query) });
    expect(byHash.body).toEqual({ data: { products: [{ name: 'Anvil' }, { name: 'Rocket Skates' }] } });
  });

  it('refuses a hash that does not match the query, or another protocol version, as the client\'s mistake', async () => {
    const query = '{ products(first: 1) { name } }';
    const mismatch = await postGraphQL(first.url, { query, extensions: persisted('{ products { upc } }') });
    expect(mismatch.status).toBe(400);
    expect(mismatch.body.errors).toEqual([
      { message: 'provided sha does not match query', extensions: { code: 'BAD_REQUEST', requestId: mismatch.headers.get('x-request-id') } },
    ]);
    const version2 = await postGraphQL(first.url, { query, extensions: { persistedQuery: { version: 2, sha256Hash: sha256(query) } } });
    expect(version2.status).toBe(400);
    expect(version2.body.errors?.[0]).toMatchObject({ message: 'Unsupported persisted query version', extensions: { code: 'BAD_REQUEST' } });
    // Nothing was registered under the mismatched hash.
    expect((await postGraphQL(second.url, { extensions: persisted('{ products { upc } }') })).body.errors?.[0]?.extensions?.code).toBe(
      'PERSISTED_QUERY_NOT_FOUND',
    );
  });
});

describe('APQ turned off (PERSISTED_QUERIES=false)', () => {
  it('answers PERSISTED_QUERY_NOT_SUPPORTED, so clients fall back to sending the text', async () => {
    const stack = await startStack({ definitions: [catalogSubgraph()], env: { DEFAULT_TENANT_ID: 'acme', PERSISTED_QUERIES: 'false' } });
    try {
      const refused = await postGraphQL(stack.url, { extensions: persisted(KNOWN) });
      expect(refused.body.errors?.map((error) => error.extensions?.code)).toEqual(['PERSISTED_QUERY_NOT_SUPPORTED']);
      expect((await postGraphQL(stack.url, { query: KNOWN })).body).toEqual({ data: { products: [{ upc: 'acme-anvil' }] } });
    } finally {
      await stack.close();
    }
  });
});

describe('trusted documents (allow-list mode)', () => {
  let stack: Stack;
  let catalogCalls = 0;
  beforeAll(async () => {
    const manifest = join(mkdtempSync(join(tmpdir(), 'gw-trusted-')), 'manifest.json');
    writeFileSync(
      manifest,
      JSON.stringify({ format: 'apollo-persisted-query-manifest', version: 1, operations: [{ id: sha256(KNOWN), name: 'Known', type: 'query', body: KNOWN }] }),
    );
    stack = await startStack({
      definitions: [catalogSubgraph()],
      env: { REDIS_URL, DEFAULT_TENANT_ID: 'acme', TRUSTED_DOCUMENTS: 'allow-list', TRUSTED_DOCUMENTS_MANIFEST: manifest },
      configure: { catalog: { configure: (app) => app.addHook('onRequest', async () => void catalogCalls++) } },
    });
  });
  afterAll(() => stack.close());

  it('accepts a known operation by text or by hash alone', async () => {
    expect((await postGraphQL(stack.url, { query: KNOWN })).body).toEqual({ data: { products: [{ upc: 'acme-anvil' }] } });
    expect((await postGraphQL(stack.url, { extensions: persisted(KNOWN) })).body).toEqual({ data: { products: [{ upc: 'acme-anvil' }] } });
  });

  it('refuses an unknown operation before any subgraph call', async () => {
    const before = catalogCalls;
    const refused = await postGraphQL(stack.url, { query: '{ products { upc name price } }' });
    expect(refused.status).toBe(400);
    expect(refused.body.errors?.[0]?.extensions?.code).toBe('OPERATION_NOT_TRUSTED');
    const wrongHash = await postGraphQL(stack.url, { query: '{ products { name } }', extensions: persisted(KNOWN) });
    expect(wrongHash.body.errors?.[0]?.extensions?.code).toBe('OPERATION_NOT_TRUSTED');
    expect(catalogCalls).toBe(before);
  });

  it('trusts documents registered in Redis', async () => {
    const query = '{ products(first: 3) { upc } }';
    expect((await postGraphQL(stack.url, { extensions: persisted(query) })).body.errors?.[0]?.extensions?.code).toBe('OPERATION_NOT_TRUSTED');
    const redis = new Redis(REDIS_URL);
    await redis.set(`trusted-document:${sha256(query)}`, query);
    redis.disconnect();
    const accepted = await postGraphQL(stack.url, { extensions: persisted(query) });
    expect(accepted.body.data).toEqual({ products: [{ upc: 'acme-anvil' }, { upc: 'acme-skates' }, { upc: 'acme-magnet' }] });
  });
});
