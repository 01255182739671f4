import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../helpers/eventually.js';
import { spawnGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { hs256Bearer } from '../helpers/hs256.js';
import { openEventStream } from '../helpers/sse.js';
import { postGraphQL } from '../helpers/stack.js';
import { freePort } from '../helpers/ports.js';
import { RedisServer } from '../helpers/redis-server.js';

const SECRET = 'multi-instance-secret-0123456789abcdef';
let master: RedisServer;
let sentinel: ChildProcess;
let gateways: GatewayProcess[] = [];
let redis: Redis;



/** Three gateway processes reaching Redis through a real Sentinel, as a production deployment would. */
beforeAll(async () => {
  // The Redis that Sentinel monitors is the test's own, like every Redis in this suite.
  master = await RedisServer.start();
  redis = new Redis(master.url());
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'gw-sentinel-'));
  writeFileSync(join(dir, 'sentinel.conf'), `port ${port}\nbind 127.0.0.1\nsentinel monitor gateway-redis 127.0.0.1 ${master.port} 1\n`);
  sentinel = spawn('redis-server', [join(dir, 'sentinel.conf'), '--sentinel'], { stdio: 'ignore' });
  await eventually(async () => {
    const probe = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => {});
    try {
      await probe.connect();
      expect(await probe.call('SENTINEL', 'get-master-addr-by-name', 'gateway-redis')).toEqual(['127.0.0.1', String(master.port)]);
    } finally {
      probe.disconnect();
    }
  });
  const env = {
    SUPERGRAPH_PATH: 'supergraph/supergraph.graphql',
    REDIS_SENTINELS: `127.0.0.1:${port}`,
    REDIS_SENTINEL_NAME: 'gateway-redis',
    REDIS_URL: master.url(),
    JWT_SECRET: SECRET,
    JWT_ALGORITHMS: 'HS256',
    AUTH_GRAPHQL: 'optional',
    LOG_LEVEL: 'warn',
    RATE_LIMIT_REQUESTS: '30',
    RATE_LIMIT_WINDOW_SECONDS: '3600',
  };
  gateways = await Promise.all([spawnGateway(env), spawnGateway(env), spawnGateway(env)]);
});
afterAll(async () => {
  for (const gateway of gateways) gateway.child.kill('SIGTERM');
  await Promise.all(gateways.map((g) => g.exited));
  sentinel?.kill('SIGKILL');
  redis.disconnect();
  await master?.stop();
});

describe('three gateway processes, Redis through Sentinel, behave as one gateway', () => {
  it('rate limits: exactly the limit is admitted across all instances', async () => {
    const statuses = await Promise.all(
      Array.from({ length: 120 }, (_, i) => postGraphQL(gateways[i % 3]!.url, { query: '{ __typename }' }).then((r) => r.status)),
    );
    expect(statuses.filter((s) => s === 200)).toHaveLength(30);
  });

  it('event streams: every subscriber on every instance gets each event exactly once', async () => {
    const authorization = await hs256Bearer(SECRET, 'user-of-multi', { tenant_id: 'multi' });
    const clients = gateways.map((gateway) => openEventStream(gateway.url, { authorization }));
    await Promise.all(clients.map((c) => c.opened));
    // Published on one instance's POST endpoint, and straight into Redis by another service.
    for (const n of [1, 2]) await redis.xadd('alerts:tenant:multi', '*', 'type', 'alert', 'data', JSON.stringify({ n }));
    const publisher = await hs256Bearer(SECRET, 'publisher', { tenant_id: 'multi', roles: ['publisher'] });
    const published = await fetch(`${gateways[2]!.url}/api/v1/alerts`, {
      method: 'POST',
      headers: { authorization: publisher, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'alert', data: { n: 3 } }),
    });
    expect(published.status).toBe(201);
    for (const client of clients) await eventually(() => expect(client.received).toHaveLength(3));
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const client of clients) {
      expect(client.received.map((event) => event.data)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
      client.source.close();
    }
  });
});
