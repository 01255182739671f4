import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisApiKeys, hashApiKey } from '../../src/auth/api-keys.js';
import { postGraphQL, startStack, type Stack } from '../helpers/stack.js';
import { sharedRedisUrl } from '../helpers/shared-redis.js';

// A Redis database of its own, so this file never meets other tests' keys.
const REDIS_URL = sharedRedisUrl(11);
const CONFIGURED_KEY = 'cfg-key-0123456789abcdef';
const WHOAMI = { query: '{ whoami { userId tenantId roles } }' };

let stack: Stack;
let redis: Redis;

beforeAll(async () => {
  redis = new Redis(REDIS_URL);
  await redis.flushdb();
  const dir = mkdtempSync(join(tmpdir(), 'gw-keys-'));
  const configFile = join(dir, 'gateway.yaml');
  writeFileSync(
    configFile,
    [
      'apiKeys:',
      '  - clientId: billing-sync',
      `    sha256: ${hashApiKey(CONFIGURED_KEY)}`,
      '    tenantId: globex',
      '    roles: [service]',
      '    tier: partner',
    ].join('\n'),
  );
  stack = await startStack({ env: { GATEWAY_CONFIG: configFile, REDIS_URL, AUTH_GRAPHQL: 'required' } });
});
afterAll(async () => {
  await stack.close();
  await redis.flushdb();
  redis.disconnect();
});

describe('API keys (X-API-Key)', () => {
  it('a configured key authenticates a machine client for its tenant', async () => {
    const { status, body } = await postGraphQL(stack.url, WHOAMI, { 'x-api-key': CONFIGURED_KEY });
    expect(status).toBe(200);
    expect(body.data).toEqual({ whoami: { userId: 'billing-sync', tenantId: 'globex', roles: ['service'] } });
  });

  it('an unknown key is refused, and never falls back to anonymous', async () => {
    const { status, body } = await postGraphQL(stack.url, WHOAMI, { 'x-api-key': 'not-a-real-key-000000' });
    expect(status).toBe(401);
    expect(body.errors?.[0]?.extensions?.code).toBe('INVALID_API_KEY');
  });

  it('a key kept in Redis works at once and is revocable without a restart', async () => {
    const keys = new RedisApiKeys(redis);
    const key = 'redis-key-fedcba9876543210';
    await keys.add(key, { clientId: 'reporting', tenantId: 'acme', roles: ['reader'], permissions: [], tier: 'standard' });
    expect((await postGraphQL(stack.url, WHOAMI, { 'x-api-key': key })).body.data).toEqual({
      whoami: { userId: 'reporting', tenantId: 'acme', roles: ['reader'] },
    });
    await keys.revoke(key);
    expect((await postGraphQL(stack.url, WHOAMI, { 'x-api-key': key })).status).toBe(401);
  });

  it('keys are stored only as hashes', async () => {
    expect(await redis.keys('*redis-key*')).toEqual([]);
  });

  it('tenant flags come from Redis (as other services write them)', async () => {
    await redis.set('tenant:globex:read_only', '1');
    const mutation = await postGraphQL(stack.url, { query: 'mutation { restock(upc: "globex-lamp", quantity: 1) { quantity } }' }, { 'x-api-key': CONFIGURED_KEY });
    expect(mutation.body.errors?.[0]?.extensions?.code).toBe('TENANT_READ_ONLY');
    await redis.del('tenant:globex:read_only');
    const allowed = await postGraphQL(stack.url, { query: 'mutation { restock(upc: "globex-lamp", quantity: 1) { quantity } }' }, { 'x-api-key': CONFIGURED_KEY });
    expect(allowed.body).toEqual({ data: { restock: { quantity: 41 } } });
  });

  it('AUTH_GRAPHQL=required refuses anonymous callers', async () => {
    const { status, body, headers } = await postGraphQL(stack.url, WHOAMI);
    expect(status).toBe(401);
    expect(body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(headers.get('www-authenticate')).toBe('Bearer realm="gateway"');
  });
});
