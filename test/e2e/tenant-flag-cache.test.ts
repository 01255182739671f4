import { mkdtempSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { RedisAvailability } from '../../src/stores/redis-availability.js';
import { RedisKeyTracking } from '../../src/stores/redis-tracking.js';
import { RedisTenantFlagStore, TENANT_FLAG_KEY_PREFIX } from '../../src/stores/tenant-flags.js';
import { eventually } from '../helpers/eventually.js';
import { RedisServer, hang } from '../helpers/redis-server.js';
import { startStack, type Stack } from '../helpers/stack.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

/**
 * Tenant flags kept in process with Redis client-side caching (CLIENT TRACKING), against a real
 * redis-server: a cached tenant is answered without Redis and without a promise, and a flag written
 * by anyone else takes effect as soon as Redis announces it.
 */

const SILENT = { info: () => {}, warn: () => {}, error: () => {} };
const gets = async (admin: Redis) => Number(/cmdstat_get:calls=(\d+)/.exec(await admin.info('commandstats'))?.[1] ?? 0);

/** A TCP relay to Redis that holds every reply back `delayMs`: a read whose answer is still on its way. */
async function slowLink(port: number, delayMs: number): Promise<Server & { port: number }> {
  const server = createServer((client) => {
    const upstream = createConnection(port, '127.0.0.1');
    client.pipe(upstream);
    upstream.on('data', (chunk) => setTimeout(() => client.writable && client.write(chunk), delayMs));
    const end = () => (client.destroy(), upstream.destroy());
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(server, { port: (server.address() as AddressInfo).port });
}

describe('tenant flags cached in process (RedisKeyTracking)', () => {
  let server: RedisServer;
  let admin: Redis;
  const closers: (() => unknown)[] = [];
  beforeAll(async () => {
    server = await RedisServer.start();
    admin = new Redis(server.url());
  });
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
    await admin.flushall();
  });
  afterAll(async () => {
    admin.disconnect();
    await server.stop();
  });

  /** The tracking connection is a copy of `trackVia` (by default the connection the flags are read on). */
  function flagStore(readsVia: Redis = new Redis(server.url()), trackVia: Redis = readsVia) {
    const tracking = RedisKeyTracking.start(trackVia, TENANT_FLAG_KEY_PREFIX, SILENT);
    if (trackVia !== readsVia) closers.push(() => trackVia.disconnect());
    const availability = RedisAvailability.attach(readsVia, { logger: SILENT, lastKnownSeconds: 300 });
    closers.push(() => tracking.close(), () => availability.detach(), () => readsVia.disconnect());
    return { store: new RedisTenantFlagStore(readsVia, availability, tracking), tracking };
  }

  it('sees its own writes at once, without waiting for Redis to announce them', async () => {
    const { store, tracking } = flagStore();
    await eventually(() => expect(tracking.active).toBe(true));
    expect(await store.get('own-writes')).toEqual({ readOnly: false, subscriptionChangedAt: null });
    await store.setReadOnly('own-writes', true);
    expect(await store.get('own-writes')).toMatchObject({ readOnly: true });
    await store.markSubscriptionChanged('own-writes', 1_700_000_000);
    expect(await store.get('own-writes')).toEqual({ readOnly: true, subscriptionChangedAt: 1_700_000_000 });
  });

  it('answers a tenant read once at once, without asking Redis, until anyone writes one of its flags', async () => {
    const { store, tracking } = flagStore();
    await eventually(() => expect(tracking.active).toBe(true));
    expect(await store.get('acme')).toEqual({ readOnly: false, subscriptionChangedAt: null });

    const before = await gets(admin);
    // The first read did ask Redis (one GET per flag), so an unchanged count below means something.
    expect(before).toBeGreaterThanOrEqual(2);
    for (let i = 0; i < 50; i++) expect(store.get('acme')).toEqual({ readOnly: false, subscriptionChangedAt: null });
    expect(await gets(admin)).toBe(before);

    // Written by another client, as the billing service or redis-cli would.
    await admin.set('tenant:acme:read_only', '1');
    await eventually(async () => expect(await store.get('acme')).toMatchObject({ readOnly: true }), 1_000, 5);
    await admin.set('tenant:acme:subscription_changed_at', '1700000000');
    await eventually(async () => expect(await store.get('acme')).toEqual({ readOnly: true, subscriptionChangedAt: 1_700_000_000 }), 1_000, 5);
    await admin.del('tenant:acme:read_only');
    await eventually(async () => expect(await store.get('acme')).toMatchObject({ readOnly: false }), 1_000, 5);
    await admin.flushall();
    await eventually(async () => expect(await store.get('acme')).toEqual({ readOnly: false, subscriptionChangedAt: null }), 1_000, 5);
    // Once read again, it is held again.
    expect(store.get('acme')).not.toBeInstanceOf(Promise);
  });

  it('does not keep a read whose reply left Redis before an invalidation of its key arrived', async () => {
    const link = await slowLink(server.port, 200);
    closers.push(() => link.close());
    // Reads over the slow link, invalidations straight from Redis.
    const reads = new Redis(link.port, '127.0.0.1');
    await reads.ping();
    const { store, tracking } = flagStore(reads, new Redis(server.url(), { lazyConnect: true }));
    await eventually(() => expect(tracking.active).toBe(true));

    const inFlight = store.get('acme');
    await new Promise((resolve) => setTimeout(resolve, 50)); // Redis has answered; the answer is on the slow link
    await admin.set('tenant:acme:read_only', '1'); // the invalidation comes over the tracking connection, quickly
    expect(await inFlight).toMatchObject({ readOnly: false }); // true when asked: returned, but must not be kept
    const next = store.get('acme');
    expect(next).toBeInstanceOf(Promise);
    expect(await next).toMatchObject({ readOnly: true });
  });

  it('flushes and re-establishes tracking when its connection is lost: a write made meanwhile is seen', async () => {
    const { store, tracking } = flagStore();
    await eventually(() => expect(tracking.active).toBe(true));
    await store.get('acme');
    expect(store.get('acme')).not.toBeInstanceOf(Promise);

    await admin.client('KILL', 'TYPE', 'pubsub');
    await admin.set('tenant:acme:read_only', '1'); // possibly before the tracking connection is back: never announced
    await eventually(async () => expect(await store.get('acme')).toMatchObject({ readOnly: true }), 2_000, 5);
    await eventually(() => expect(tracking.active).toBe(true));
    await store.get('acme');
    expect(store.get('acme')).toMatchObject({ readOnly: true });
  });
});

describe('a server that stops answering with the connection open', () => {
  it('is noticed by the heartbeat: the cache is dropped and reads go to Redis (and its availability rules)', async () => {
    const server = await RedisServer.start();
    const admin = new Redis(server.url());
    const reads = new Redis(server.url());
    const tracking = RedisKeyTracking.start(reads, TENANT_FLAG_KEY_PREFIX, SILENT, { heartbeatMs: 100, timeoutMs: 200 });
    const availability = RedisAvailability.attach(reads, { logger: SILENT, lastKnownSeconds: 300, timeoutMs: 200 });
    const store = new RedisTenantFlagStore(reads, availability, tracking);
    try {
      await eventually(() => expect(tracking.active).toBe(true));
      await store.get('acme');
      expect(store.get('acme')).not.toBeInstanceOf(Promise);
      const resume = await hang(admin);
      try {
        await eventually(() => expect(tracking.active).toBe(false), 2_000, 20);
        // Not from the cache any more: a read, bounded, which falls back to the last-known flags.
        const read = store.get('acme');
        expect(read).toBeInstanceOf(Promise);
        expect(await read).toEqual({ readOnly: false, subscriptionChangedAt: null });
      } finally {
        resume();
      }
      await eventually(() => expect(tracking.active).toBe(true), 10_000);
    } finally {
      tracking.close();
      availability.detach();
      reads.disconnect();
      admin.disconnect();
      await server.stop();
    }
  });
});

describe('a server that refuses CLIENT TRACKING', () => {
  it('reads every time, and says so once', async () => {
    const server = await RedisServer.start(['--user', 'default', 'on', 'nopass', '~*', '&*', '+@all', '-client|tracking']);
    const admin = new Redis(server.url());
    const reads = new Redis(server.url());
    const warnings: string[] = [];
    const tracking = RedisKeyTracking.start(reads, TENANT_FLAG_KEY_PREFIX, { ...SILENT, warn: (...args: unknown[]) => void warnings.push(String(args[1])) });
    const store = new RedisTenantFlagStore(reads, RedisAvailability.attach(reads, { logger: SILENT, lastKnownSeconds: 300 }), tracking);
    try {
      await eventually(() => expect(warnings).toHaveLength(1));
      expect(tracking.active).toBe(false);
      await store.get('acme');
      expect(store.get('acme')).toBeInstanceOf(Promise);
      await admin.set('tenant:acme:read_only', '1');
      expect(await store.get('acme')).toMatchObject({ readOnly: true });
      expect(warnings).toHaveLength(1);
    } finally {
      tracking.close();
      reads.disconnect();
      admin.disconnect();
      await server.stop();
    }
  });
});

describe('through the gateway', () => {
  let server: RedisServer;
  let admin: Redis;
  let upstream: Upstream;
  let stack: Stack;
  beforeAll(async () => {
    server = await RedisServer.start();
    admin = new Redis(server.url());
    upstream = await startUpstream('plain');
    const file = join(mkdtempSync(join(tmpdir(), 'gw-flag-cache-')), 'gateway.yaml');
    writeFileSync(file, stringify({ services: { plain: { upstreams: [{ url: upstream.url }] } }, routes: [{ prefix: '/api/v1/plain', service: 'plain' }] }));
    stack = await startStack({ env: { REDIS_URL: server.url(), GATEWAY_CONFIG: file } });
  });
  afterAll(async () => {
    await stack?.close();
    await upstream?.close();
    admin?.disconnect();
    await server?.stop();
  });

  it('reads a busy tenant\'s flags from Redis once, and refuses its next write once read_only is set by another client', async () => {
    const headers = { ...(await stack.bearer({ tenant_id: 'acme' })), 'content-type': 'application/json' };
    const write = () => fetch(`${stack.url}/api/v1/plain/items`, { method: 'POST', headers, body: '{}' });
    await eventually(async () => expect((await write()).status).toBe(200));

    const before = await gets(admin);
    expect(before).toBeGreaterThanOrEqual(2);
    for (let i = 0; i < 20; i++) expect((await write()).status).toBe(200);
    expect(await gets(admin)).toBe(before);

    await admin.set('tenant:acme:read_only', '1');
    const setAt = Date.now();
    const refused = await eventually(async () => {
      const response = await write();
      expect(response.status).toBe(403);
      return (await response.json()) as { code: string };
    }, 1_000, 5);
    expect(refused.code).toBe('TENANT_READ_ONLY');
    expect(Date.now() - setAt).toBeLessThan(500);
  });
});
