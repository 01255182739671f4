import autocannon from 'autocannon';
import { demoSubgraphs } from '../subgraphs/catalogue.js';
import { readSchema, startSubgraph } from '../subgraphs/shared/server.js';
import { spawnGateway } from '../test/helpers/gateway-process.js';
import { writeSupergraph } from '../test/helpers/stack.js';

/**
 * `npm run bench`: load on the gateway (its own process, as in production) in front of the real demo
 * subgraphs on loopback, next to the same subgraph called directly, so the gateway's own overhead is
 * visible. Not a test: numbers depend on the machine; the README records one run.
 */
const durationSeconds = Number(process.env.BENCH_SECONDS ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 32);

const definitions = Object.values(demoSubgraphs).map((factory) => factory());
const subgraphs = await Promise.all(definitions.map((definition) => startSubgraph(definition)));
const supergraphPath = writeSupergraph(
  subgraphs.map((subgraph, i) => ({ name: subgraph.name, url: subgraph.url, sdl: readSchema(definitions[i]!.schemaFile) })),
);
const gateway = await spawnGateway({
  SUPERGRAPH_PATH: supergraphPath,
  NODE_ENV: 'production',
  LOG_LEVEL: 'warn',
  DEFAULT_TENANT_ID: 'acme',
});
const catalog = subgraphs.find((subgraph) => subgraph.name === 'catalog')!;

const scenarios = [
  { name: 'catalog subgraph, direct', url: catalog.url, query: '{ products { upc name price } }' },
  { name: 'gateway → 1 subgraph', url: `${gateway.url}/graphql`, query: '{ products { upc name price } }' },
  {
    name: 'gateway → 4 subgraphs (nested)',
    url: `${gateway.url}/graphql`,
    query: '{ orders { id buyer { name email } items { quantity product { name price inStock shippingEstimate } } } }',
  },
];

const rows = [];
for (const scenario of scenarios) {
  const result = await autocannon({
    url: scenario.url,
    method: 'POST',
    connections,
    duration: durationSeconds,
    headers: { 'content-type': 'application/json', 'x-tenant-id': 'acme' },
    body: JSON.stringify({ query: scenario.query }),
  });
  rows.push({
    scenario: scenario.name,
    'req/s': Math.round(result.requests.average),
    'p50 ms': result.latency.p50,
    'p99 ms': result.latency.p99,
    errors: result.errors + result.non2xx,
  });
}
console.table(rows);
gateway.child.kill('SIGTERM');
await gateway.exited;
await Promise.all(subgraphs.map((subgraph) => subgraph.close()));
