import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEADLINE_MS } from '../helpers/deadlines.js';
import { eventually } from '../helpers/eventually.js';
import { spawnGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { hs256Bearer } from '../helpers/hs256.js';
import { startRedisCluster } from '../helpers/redis-cluster.js';
import { openEventStream } from '../helpers/sse.js';
import { postGraphQL } from '../helpers/stack.js';

const SECRET = 'cluster-secret-0123456789abcdef01234';
let cluster: Awaited<ReturnType<typeof startRedisCluster>>;
let client: Cluster;
let gateways: GatewayProcess[] = [];


beforeAll(async () => {
  cluster = await startRedisCluster();
  client = new Cluster(cluster.nodes.map((node) => ({ host: '127.0.0.1', port: Number(node.split(':')[1]) })));
  await eventually(async () => expect(await client.ping()).toBe('PONG'), DEADLINE_MS, 200);
  const env = {
    SUPERGRAPH_PATH: 'supergraph/supergraph.graphql',
    REDIS_CLUSTER_NODES: cluster.nodes.join(','),
    JWT_SECRET: SECRET,
    JWT_ALGORITHMS: 'HS256',
    AUTH_GRAPHQL: 'optional',
    LOG_LEVEL: 'warn',
    RATE_LIMIT_REQUESTS: '25',
    RATE_LIMIT_WINDOW_SECONDS: '3600',
  };
  gateways = await Promise.all([spawnGateway(env), spawnGateway(env)]);
});
afterAll(async () => {
  for (const gateway of gateways) gateway.child.kill('SIGTERM');
  await Promise.all(gateways.map((g) => g.exited));
  client?.disconnect();
  await cluster?.stop();
});

describe('on a Redis Cluster', () => {
  it('rate limits stay exact across instances (multi-key scripts within one hash slot)', async () => {
    const statuses = await Promise.all(
      Array.from({ length: 80 }, (_, i) => postGraphQL(gateways[i % 2]!.url, { query: '{ __typename }' }).then((r) => r.status)),
    );
    expect(statuses.filter((s) => s === 200)).toHaveLength(25);
  });

  it('tenant flags and event streams of tenants in different slots all work', async () => {
    const tenants = ['acme', 'globex', 'initech', 'umbrella'];
    const clients = await Promise.all(
      tenants.map(async (tenant, i) => {
        const authorization = await hs256Bearer(SECRET, `u-${tenant}`, { tenant_id: tenant });
        // A loaded machine may still be settling the cluster's slot map in a gateway: reconnect like a browser would.
        return eventually(async () => {
          const stream = openEventStream(gateways[i % 2]!.url, { authorization });
          try {
            await stream.opened;
          } catch (error) {
            stream.source.close();
            throw error;
          }
          return { tenant, ...stream };
        }, 10_000, 250);
      }),
    );
    for (const { tenant } of clients) await client.xadd(`alerts:tenant:${tenant}`, '*', 'type', 'alert', 'data', JSON.stringify({ tenant }));
    for (const c of clients) await eventually(() => expect(c.received.map((e) => e.data)).toEqual([{ tenant: c.tenant }]), DEADLINE_MS, 100);
    for (const c of clients) c.source.close();

    await client.set('tenant:globex:read_only', '1');
    const authorization = await hs256Bearer(SECRET, 'u-globex-flag', { tenant_id: 'globex' });
    // Flags are read per request; on a loaded machine one read may exceed the Redis call bound and
    // fall back per the (fail-open) policy, so the refusal is awaited rather than expected at once.
    await eventually(async () => {
      const mutation = await postGraphQL(gateways[0]!.url, { query: 'mutation { restock(upc: "x", quantity: 1) { quantity } }' }, { authorization });
      expect(mutation.body.errors?.[0]?.extensions?.code).toBe('TENANT_READ_ONLY');
    }, DEADLINE_MS, 250);
  });
});
