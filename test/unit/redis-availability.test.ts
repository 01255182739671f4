import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { createRedis, type RedisClient } from '../../src/stores/redis.js';
import { RedisAvailability, RedisUnavailable } from '../../src/stores/redis-availability.js';
import { eventually } from '../helpers/eventually.js';
import { RedisServer, hang } from '../helpers/redis-server.js';

/** Blocks this process's event loop, as a busy machine or a long GC pause does. */
function stall(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Runs `work` in the check phase, so that the loop goes on with timers before it polls sockets. */
const inCheckPhase = (work: () => void) => new Promise<void>((resolve) => setImmediate(() => (work(), resolve())));

async function outages(registry: Registry): Promise<number> {
  return (await registry.getSingleMetric('gateway_redis_outages_total')!.get()).values[0]?.value ?? 0;
}

describe('Redis availability under load', () => {
  let server: RedisServer;
  let redis: RedisClient;
  let availability: RedisAvailability;
  let registry: Registry;

  beforeAll(async () => {
    server = await RedisServer.start();
    redis = createRedis({ url: server.url() });
    registry = new Registry();
    // The background probe is slowed right down: only the suspicion check may bring Redis back here.
    availability = RedisAvailability.attach(redis, { logger: { info: () => {}, error: () => {} }, registry, lastKnownSeconds: 1, probeIntervalMs: 600_000 });
    await redis.ping();
  });

  afterAll(async () => {
    availability.detach();
    redis.disconnect();
    await server.stop();
  });

  it('a burst of calls held past every timeout by our own stalled event loop does not declare a healthy Redis down', async () => {
    // A burst of opens on a loaded machine: replies wait in the socket while the loop is busy for longer
    // than ioredis's own command timeout (4 × the bound), which rejects without looking at the socket.
    const calls = Array.from({ length: 200 }, (_, i) => availability.run(() => redis.get(`burst:${i}`)).then(() => 'answered', (error: unknown) => error));
    await inCheckPhase(() => stall(2_300));
    const outcomes = await Promise.all(calls);
    // The stall must have made some calls time out, or this test proves nothing.
    expect(outcomes.some((outcome) => outcome !== 'answered')).toBe(true);
    for (const outcome of outcomes) if (outcome !== 'answered') expect(outcome).toBeInstanceOf(RedisUnavailable);
    // Whatever those calls got, Redis did answer: the next request must be served, not refused.
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect(availability.readiness()).toEqual({ status: 'up' });
    expect(await outages(registry)).toBe(0);
    await expect(availability.run(() => redis.get('after-burst'))).resolves.toBeNull();
  });

  it('a Redis that stops answering (connection open) is still declared down, and a call then fails fast', async () => {
    const resume = await hang(server);
    try {
      const started = Date.now();
      await expect(availability.run(() => redis.get('hung'))).rejects.toBeInstanceOf(RedisUnavailable);
      expect(Date.now() - started).toBeLessThan(1_500);
      await eventually(async () => expect(availability.readiness()).toMatchObject({ status: 'down' }));
      expect(await outages(registry)).toBe(1);
      const fast = Date.now();
      await expect(availability.run(() => redis.get('hung'))).rejects.toBeInstanceOf(RedisUnavailable);
      expect(Date.now() - fast).toBeLessThan(100);
    } finally {
      resume();
    }
  });
});
