import calculateSlot from 'cluster-key-slot';
import type { FastifyBaseLogger } from 'fastify';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { BucketCheck } from '../../src/ratelimit/policy.js';
import { MAX_BATCH, RedisRateLimitStore } from '../../src/ratelimit/redis-store.js';
import { RateLimitStoreUnavailable, ResilientRateLimitStore } from '../../src/ratelimit/resilient-store.js';
import type { Decision } from '../../src/ratelimit/store.js';
import { RedisAvailability, RedisUnavailable } from '../../src/stores/redis-availability.js';
import { createRedis, type RedisClient } from '../../src/stores/redis.js';
import { DEADLINE_MS } from '../helpers/deadlines.js';
import { eventually } from '../helpers/eventually.js';
import { startRedisCluster } from '../helpers/redis-cluster.js';
import { RedisServer, hang } from '../helpers/redis-server.js';

const silent = pino({ level: 'silent' }) as FastifyBaseLogger;
let run = 0;
/** A bucket of a caller, under the caller's hash tag; fresh keys per test run. */
const bucket = (caller: string, name: string, requests: number, windowSeconds = 3600): BucketCheck => ({
  name,
  key: `rl:{${caller}}:${name}:${run}`,
  policy: { requests, windowSeconds },
});
const remaining = (decision: Decision) => decision.buckets.map((b) => b.remaining);

/** Every decision asked in one synchronous stretch: one event-loop turn, so one batch. */
function oneTurn(store: RedisRateLimitStore, lists: readonly (readonly BucketCheck[])[]): Promise<PromiseSettledResult<Decision>[]> {
  return Promise.allSettled(lists.map((checks) => store.consume(checks)));
}

async function scriptCalls(redis: RedisClient): Promise<number> {
  const stats = String(await redis.info('commandstats'));
  let calls = 0;
  for (const match of stats.matchAll(/cmdstat_(?:evalsha|eval):calls=(\d+)/g)) calls += Number(match[1]);
  return calls;
}

describe('Redis token buckets, batched per event-loop turn', () => {
  let server: RedisServer;
  let redis: RedisClient;
  let admin: RedisClient;
  let availability: RedisAvailability;
  let store: RedisRateLimitStore;

  beforeAll(async () => {
    server = await RedisServer.start();
    redis = createRedis({ url: server.url() });
    admin = createRedis({ url: server.url() });
    availability = RedisAvailability.attach(redis, { logger: silent, lastKnownSeconds: 1, timeoutMs: 300 });
    store = new RedisRateLimitStore(redis, availability);
    await redis.ping();
  });
  afterAll(async () => {
    availability.detach();
    redis.disconnect();
    admin.disconnect();
    await server.stop();
  });

  it('one caller asking more than a batch holds in one turn: exactly the limit admitted, each level seen once, in a few script calls', async () => {
    run++;
    const runSpy = vi.spyOn(availability, 'run');
    await admin.config('RESETSTAT');
    const checks = [bucket('user:burst', 'default', 100)];
    const outcomes = await oneTurn(store, Array.from({ length: 300 }, () => checks));
    const decisions = outcomes.map((o) => (o.status === 'fulfilled' ? o.value : expect.fail(String(o.reason))));
    const admitted = decisions.filter((d) => d.allowed);
    expect(admitted).toHaveLength(100);
    // Decisions are taken in the order asked: the first hundred get 99…0, the rest are refused.
    expect(decisions.slice(0, 100).map((d) => d.buckets[0]!.remaining)).toEqual(Array.from({ length: 100 }, (_, i) => 99 - i));
    for (const refused of decisions.slice(100)) {
      expect(refused).toMatchObject({ allowed: false, buckets: [{ remaining: 0, limit: 100 }] });
      expect(refused.retryAfterSeconds).toBeGreaterThan(0);
      expect(refused.retryAfterSeconds).toBeLessThanOrEqual(36);
    }
    // 300 decisions, batches of at most MAX_BATCH: two calls, each bounded once.
    const expectedCalls = Math.ceil(300 / MAX_BATCH);
    expect(await scriptCalls(admin)).toBe(expectedCalls);
    expect(runSpy).toHaveBeenCalledTimes(expectedCalls);
    runSpy.mockRestore();
  });

  it('callers sharing a batch keep their own counts, and each decision is all-or-nothing', async () => {
    run++;
    const a = [bucket('user:a', 'default', 3)];
    const b = [bucket('user:b', 'default', 5)];
    // c's route bucket holds 2: the 3rd-5th route decisions are refused and take nothing from c's
    // default bucket, which the default-only decisions after them then find at 8.
    const cRoute = [bucket('user:c', 'default', 10), bucket('user:c', 'route', 2)];
    const cDefault = [cRoute[0]!];
    const lists = [...Array.from({ length: 6 }, (_, i) => [a, b][i % 2]!), a, b, b, b, b, ...Array.from({ length: 5 }, () => cRoute), ...Array.from({ length: 5 }, () => cDefault)];
    const outcomes = await oneTurn(store, lists);
    const decisions = outcomes.map((o) => (o.status === 'fulfilled' ? o.value : expect.fail(String(o.reason))));
    const allowedOf = (checks: readonly BucketCheck[]) => decisions.filter((_, i) => lists[i] === checks && decisions[i]!.allowed).length;
    expect(allowedOf(a)).toBe(3);
    expect(allowedOf(b)).toBe(5);
    const c = decisions.slice(11);
    expect(c.map((d) => d.allowed)).toEqual([true, true, false, false, false, true, true, true, true, true]);
    expect(c.slice(0, 5).map(remaining)).toEqual([[9, 1], [8, 0], [8, 0], [8, 0], [8, 0]]);
    expect(c.slice(5).map(remaining)).toEqual([[7], [6], [5], [4], [3]]);
    expect(Number(await admin.hget(cRoute[0]!.key, 'tokens'))).toBeCloseTo(3, 2);
  });

  it('a decision Redis refuses (a key of the wrong type) fails alone, as a reply error, and takes nothing', async () => {
    run++;
    const bad = [bucket('user:bad', 'default', 5), bucket('user:bad', 'route', 5)];
    await admin.set(bad[1]!.key, 'not a hash');
    const good = [bucket('user:good', 'default', 5)];
    const runSpy = vi.spyOn(availability, 'run');
    const outcomes = await oneTurn(store, [good, bad, good]);
    expect(runSpy).toHaveBeenCalledTimes(1);
    runSpy.mockRestore();
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const failure = (outcomes[1] as PromiseRejectedResult).reason as RedisUnavailable;
    expect(failure).toBeInstanceOf(RedisUnavailable);
    expect(failure.message).toMatch(/WRONGTYPE/);
    expect((failure.cause as Error).name).toBe('ReplyError');
    expect(outcomes.filter((o) => o.status === 'fulfilled').map((o) => remaining(o.value))).toEqual([[4], [3]]);
    expect(await admin.exists(bad[0]!.key)).toBe(0);
    // Redis answered: no outage.
    expect(availability.readiness()).toEqual({ status: 'up' });
  });

  it('a hung Redis: every decision of the batch gets its fallback (open) or refusal (closed) within the bound, from one bounded call', async () => {
    run++;
    const own = createRedis({ url: server.url() });
    const ownAvailability = RedisAvailability.attach(own, { logger: silent, lastKnownSeconds: 1, timeoutMs: 300, probeIntervalMs: 100 });
    const shared = new RedisRateLimitStore(own, ownAvailability);
    const resilient = (mode: 'open' | 'closed') =>
      new ResilientRateLimitStore(shared, { mode, fallbackFactor: 0.5, logger: silent, onFailover: () => {}, availability: ownAvailability });
    const open = resilient('open');
    const closed = resilient('closed');
    await own.ping();
    const checks = [bucket('user:hung', 'default', 10)];
    const runSpy = vi.spyOn(ownAvailability, 'run');
    const resume = await hang(admin);
    try {
      const started = Date.now();
      const outcomes = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? open : closed).consume(checks)));
      const elapsed = Date.now() - started;
      expect(runSpy).toHaveBeenCalledTimes(1);
      // The bound (300 ms) and a turn, not ioredis's own timeout (2 s) nor forever.
      expect(elapsed).toBeLessThan(1_500);
      const opened = outcomes.filter((_, i) => i % 2 === 0);
      const refused = outcomes.filter((_, i) => i % 2 === 1);
      for (const outcome of refused) {
        expect(outcome.status).toBe('rejected');
        expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(RateLimitStoreUnavailable);
      }
      // Local buckets at half the capacity: 5 of the 20 admitted.
      const local = opened.map((o) => (o.status === 'fulfilled' ? o.value.allowed : expect.fail(String(o.reason))));
      expect(local.filter(Boolean)).toHaveLength(5);
      expect(open.degraded && closed.degraded).toBe(true);
      await eventually(() => expect(ownAvailability.readiness().status).toBe('down'), DEADLINE_MS, 50);
    } finally {
      resume();
      runSpy.mockRestore();
    }
    await eventually(() => expect(ownAvailability.readiness()).toEqual({ status: 'up' }), DEADLINE_MS, 50);
    ownAvailability.detach();
    own.disconnect();
  });
});

describe('Redis token buckets on a Redis Cluster', () => {
  let cluster: Awaited<ReturnType<typeof startRedisCluster>>;
  let redis: RedisClient;
  let availability: RedisAvailability;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    redis = createRedis({ clusterNodes: cluster.nodes });
    availability = RedisAvailability.attach(redis, { logger: silent, lastKnownSeconds: 1 });
    await eventually(async () => expect(await redis.ping()).toBe('PONG'), DEADLINE_MS, 200);
  });
  afterAll(async () => {
    availability?.detach();
    redis?.disconnect();
    await cluster?.stop();
  });

  it('a batch of callers on different slots: one call per slot, each caller exact', async () => {
    run++;
    const store = new RedisRateLimitStore(redis, availability);
    const callers = ['user:a', 'user:b', 'user:c', 'user:d', 'user:e', 'key:f'].map((caller) => [bucket(caller, 'default', 3), bucket(caller, 'route', 50)]);
    const slots = new Set(callers.map((checks) => calculateSlot(checks[0]!.key)));
    expect(slots.size).toBeGreaterThan(1);
    const lists = Array.from({ length: 7 }, () => callers).flat();
    const runSpy = vi.spyOn(availability, 'run');
    const outcomes = await oneTurn(store, lists);
    expect(runSpy).toHaveBeenCalledTimes(slots.size);
    runSpy.mockRestore();
    const decisions = outcomes.map((o) => (o.status === 'fulfilled' ? o.value : expect.fail(String(o.reason))));
    for (const checks of callers) {
      const own = decisions.filter((_, i) => lists[i] === checks);
      expect(own.map((d) => d.allowed)).toEqual([true, true, true, false, false, false, false]);
      expect(own.map(remaining)).toEqual([[2, 49], [1, 48], [0, 47], [0, 47], [0, 47], [0, 47], [0, 47]]);
    }
  });
});
