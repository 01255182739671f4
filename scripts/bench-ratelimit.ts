import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { stringify } from 'yaml';
import { RedisRateLimitStore } from '../src/ratelimit/redis-store.js';
import { MemoryRateLimitStore, type RateLimitStore } from '../src/ratelimit/store.js';
import { spawnGateway } from '../test/helpers/gateway-process.js';
import { RedisServer } from '../test/helpers/redis-server.js';

/**
 * `npm run bench:ratelimit`: decisions per second of each store, and the latency the limiter adds to
 * a request through the gateway, with Redis in a redis-server the bench starts on a free port (a Redis
 * already running, such as one on 6379, is never touched).
 */
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const server = await RedisServer.start();
const redisUrl = server.url();
const policy = { requests: 1_000_000_000, windowSeconds: 60 };
const checks = (i: number) => [
  { name: 'default', key: `rl:{bench-${i % 1000}}:default`, policy },
  { name: 'authenticated', key: `rl:{bench-${i % 1000}}:authenticated`, policy },
];

async function decisionsPerSecond(store: RateLimitStore, concurrency: number): Promise<number> {
  let done = 0;
  const until = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      for (let i = worker; Date.now() < until; i += concurrency) {
        await store.consume(checks(i));
        done++;
      }
    }),
  );
  return Math.round(done / seconds);
}

const redis = new Redis(redisUrl);
// Connected before the store is measured: its availability tracker refuses calls while connecting.
await redis.ping();
const stores = [
  { store: 'memory', 'decisions/s': await decisionsPerSecond(new MemoryRateLimitStore(), 64) },
  { store: 'redis (Lua, 2 buckets)', 'decisions/s': await decisionsPerSecond(new RedisRateLimitStore(redis), 64) },
];
console.table(stores);

const config = join(mkdtempSync(join(tmpdir(), 'gw-bench-')), 'gateway.yaml');
writeFileSync(config, stringify({ rateLimits: { default: policy, anonymous: policy } }));
const base = { SUPERGRAPH_PATH: 'supergraph/supergraph.graphql', AUTH_GRAPHQL: 'optional', LOG_LEVEL: 'warn', NODE_ENV: 'production', GATEWAY_CONFIG: config };
const rows = [];
for (const [name, env] of [
  ['limiter off', { ...base, RATE_LIMIT_ENABLED: 'false' }],
  ['limiter on, Redis', { ...base, REDIS_URL: redisUrl }],
] as const) {
  const gateway = await spawnGateway(env);
  const result = await autocannon({
    url: `${gateway.url}/graphql`,
    method: 'POST',
    connections: 16,
    duration: seconds,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: '{ __typename }' }),
  });
  rows.push({ gateway: name, 'req/s': Math.round(result.requests.average), 'p50 ms': result.latency.p50, 'p99 ms': result.latency.p99, non2xx: result.non2xx });
  gateway.child.kill('SIGTERM');
  await gateway.exited;
}
console.table(rows);
redis.disconnect();
await server.stop();
