import calculateSlot from 'cluster-key-slot';
import type { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { createRedis } from '../../src/stores/redis.js';
import { RedisAvailability, RedisUnavailable } from '../../src/stores/redis-availability.js';
import { DEADLINE_MS } from '../helpers/deadlines.js';
import { eventually } from '../helpers/eventually.js';
import { startRedisCluster } from '../helpers/redis-cluster.js';
import { hang } from '../helpers/redis-server.js';

/**
 * On a Redis Cluster one shard can hang while the others answer. The check that follows a late
 * call, and the probe that looks for a recovery, must ask that shard: a Cluster's own PING goes to
 * a node of its choosing and would clear a hung shard whenever it picked a healthy one.
 */
describe('Redis availability on a Cluster with one hung shard', () => {
  let cluster: Awaited<ReturnType<typeof startRedisCluster>>;
  let redis: Cluster;
  let availability: RedisAvailability;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    redis = createRedis({ clusterNodes: cluster.nodes }) as Cluster;
    await eventually(async () => expect(await redis.ping()).toBe('PONG'), DEADLINE_MS, 200);
    availability = RedisAvailability.attach(redis, { logger: { info: () => {}, error: () => {} }, registry: new Registry(), lastKnownSeconds: 1, probeIntervalMs: 100 });
  });

  afterAll(async () => {
    availability?.detach();
    redis?.disconnect();
    await cluster?.stop();
  });

  /** A key whose slot `node` serves. */
  function keyOn(node: Redis): string {
    const address = `${node.options.host}:${node.options.port}`;
    for (let i = 0; ; i++) if (redis.slots[calculateSlot(`k${i}`)]?.[0] === address) return `k${i}`;
  }

  it('whichever shard hangs: declared down after a call to it times out, down while it hangs, up again with it', async () => {
    const masters = redis.nodes('master');
    expect(masters).toHaveLength(3);
    // The Cluster's own PING went to one node of its choosing: each shard in turn must be found.
    for (const hung of masters) {
      const key = keyOn(hung);
      expect(await availability.run(() => redis.get(key))).toBeNull();
      const resume = await hang(hung);
      try {
        await expect(availability.run(() => redis.get(key))).rejects.toBeInstanceOf(RedisUnavailable);
        await eventually(async () => expect(availability.readiness()).toMatchObject({ status: 'down' }), 2_000, 50);
        // Ten probes: each finds the shard still hung.
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        expect(availability.readiness()).toMatchObject({ status: 'down' });
      } finally {
        resume();
      }
      await eventually(async () => expect(availability.readiness()).toEqual({ status: 'up' }), DEADLINE_MS, 50);
    }
  });
});
