import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyBaseLogger } from 'fastify';
import { buildSchema, parse, type OperationDefinitionNode } from 'graphql';
import { Registry } from 'prom-client';
import type { GatewayContext } from '../../src/context.js';
import { BoundedMemoryStore } from '../../src/graphql/field-limit-stores.js';
import { FieldRateLimiter, limitedOccurrences } from '../../src/graphql/field-rate-limits.js';
import { createRedis, type RedisClient } from '../../src/stores/redis.js';
import { RedisAvailability } from '../../src/stores/redis-availability.js';
import { eventually } from '../helpers/eventually.js';
import { RedisServer, hang } from '../helpers/redis-server.js';

/** Log lines at or above info, as the gateway's logger would write them. */
function capturingLogger() {
  const lines: { level: 'info' | 'warn' | 'error'; msg: string; fields: Record<string, unknown> }[] = [];
  const at = (level: 'info' | 'warn' | 'error') => (fields: unknown, msg?: string) => {
    if (typeof fields === 'string') lines.push({ level, msg: fields, fields: {} });
    else lines.push({ level, msg: msg ?? '', fields: fields as Record<string, unknown> });
  };
  const logger = { info: at('info'), warn: at('warn'), error: at('error'), debug: () => {}, trace: () => {}, fatal: at('error') };
  return { lines, logger: logger as unknown as FastifyBaseLogger };
}

const schema = buildSchema('type Query { product(upc: String): String }');
const document = parse('{ product(upc: "anvil") }');
const occurrences = limitedOccurrences(schema, document, document.definitions[0] as OperationDefinitionNode, new Map([['Query.product', { max: 5, window: '1m' }]]));
const caller = (ip: string) => ({ clientIp: ip, principal: { kind: 'anonymous' } }) as unknown as GatewayContext;

describe('field rate limits with Redis: what is logged', () => {
  let server: RedisServer;
  let redis: RedisClient;
  let availability: RedisAvailability;
  let log: ReturnType<typeof capturingLogger>;
  let limiter: FieldRateLimiter;

  beforeAll(async () => {
    server = await RedisServer.start();
    redis = createRedis({ url: server.url() });
    await redis.ping();
  });
  afterEach(() => availability.detach());
  afterAll(async () => {
    redis.disconnect();
    await server.stop();
  });

  function start() {
    log = capturingLogger();
    availability = RedisAvailability.attach(redis, { logger: log.logger, registry: new Registry(), lastKnownSeconds: 1, probeIntervalMs: 100 });
    limiter = new FieldRateLimiter({ redis, availability, onStoreFailure: 'open', fallbackFactor: 0.5, logger: log.logger });
  }

  it('a counter Redis refuses (WRONGTYPE) is that request\'s problem: a warning naming the field, no outage, others still shared', async () => {
    start();
    await redis.hset('redis-store-id::ip:10.0.0.1:Query.product', 'not', 'a string');
    expect(await limiter.spend(occurrences, {}, caller('10.0.0.1'))).toBeNull();
    expect(await limiter.spend(occurrences, {}, caller('10.0.0.2'))).toBeNull();
    expect(await limiter.spend(occurrences, {}, caller('10.0.0.1'))).toBeNull();
    expect(log.lines).toEqual([
      { level: 'warn', msg: expect.stringMatching(/^field rate limit counter refused by Redis/), fields: expect.objectContaining({ field: 'Query.product', reason: expect.stringMatching(/^WRONGTYPE/) }) },
      { level: 'warn', msg: expect.stringMatching(/^field rate limit counter refused by Redis/), fields: expect.objectContaining({ field: 'Query.product' }) },
    ]);
    expect(availability.readiness()).toEqual({ status: 'up' });
    expect(JSON.parse((await redis.get('redis-store-id::ip:10.0.0.2:Query.product'))!)).toHaveLength(1);
  });

  it('a counter value that is not JSON neither stops the process nor sticks: counted from empty, with a warning, then rewritten', async () => {
    start();
    const key = 'redis-store-id::ip:10.0.0.4:Query.product';
    await redis.set(key, 'not json');
    expect(await limiter.spend(occurrences, {}, caller('10.0.0.4'))).toBeNull();
    expect(JSON.parse((await redis.get(key))!)).toHaveLength(1);
    expect(await redis.ttl(key)).toBeGreaterThan(50);
    expect(log.lines).toEqual([{ level: 'warn', msg: expect.stringMatching(/^field rate limit counter in Redis was not a list/), fields: { key, value: 'not json' } }]);
    expect(availability.readiness()).toEqual({ status: 'up' });
  });

  it('an outage is logged once, by RedisAvailability, and so is the recovery', async () => {
    start();
    const resume = await hang(server);
    try {
      await limiter.spend(occurrences, {}, caller('10.0.0.3'));
      await eventually(async () => expect(availability.readiness()).toMatchObject({ status: 'down' }));
      await limiter.spend(occurrences, {}, caller('10.0.0.3'));
    } finally {
      resume();
    }
    await eventually(async () => expect(availability.readiness()).toEqual({ status: 'up' }));
    await limiter.spend(occurrences, {}, caller('10.0.0.3'));
    expect(log.lines.map(({ level, msg }) => ({ level, msg }))).toEqual([
      { level: 'error', msg: 'redis unavailable; features degrade per their policies' },
      { level: 'info', msg: 'redis available again' },
    ]);
  });
});

describe('field counters kept in this process', () => {
  const identity = (caller: string) => ({ contextIdentity: caller, fieldIdentity: 'Query.product' });

  it('are dropped once their window has passed, so a long outage does not keep every caller ever seen', async () => {
    let now = 1_000;
    const store = new BoundedMemoryStore({ perf: { now: () => now } });
    for (let i = 0; i < 50; i++) store.setForIdentity(identity(`ip:10.0.0.${i}`), [now], 60_000);
    expect(store.size).toBe(50);
    expect(store.getForIdentity(identity('ip:10.0.0.7'))).toEqual([1_000]);
    now += 60_001;
    await new Promise((resolve) => setTimeout(resolve, 5)); // lru-cache reads the clock at most once a millisecond
    expect(store.size).toBe(0);
    expect(store.getForIdentity(identity('ip:10.0.0.7'))).toEqual([]);
  });

  it('are bounded in number, the least recently used going first', () => {
    const store = new BoundedMemoryStore({ maxEntries: 10 });
    for (let i = 0; i < 25; i++) store.setForIdentity(identity(`ip:10.0.1.${i}`), [i], 60_000);
    expect(store.size).toBe(10);
    expect(store.getForIdentity(identity('ip:10.0.1.24'))).toEqual([24]);
    expect(store.getForIdentity(identity('ip:10.0.1.0'))).toEqual([]);
  });
});
