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
