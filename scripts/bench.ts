import autocannon from 'autocannon';
import { demoSubgraphs } from '../subgraphs/catalogue.js';
import { readSchema, startSubgraph } from '../subgraphs/shared/server.js';
import { spawnGateway } from '../test/helpers/gateway-process.js';
import { ContextSigner } from '../src/auth/context-signer.js';
import { anonymousPrincipal } from '../src/auth/principal.js';
import { loadConfig } from '../src/config/load.js';
import { gatewaySigningKeyPem, lazyGatewayJwks, writeSupergraph } from '../test/helpers/stack.js';

/**
 * `npm run bench`: load on the gateway (its own process, as in production) in front of the real demo
 * subgraphs on loopback, next to the same subgraph called directly, so the gateway's own overhead is
 * visible. Not a test: numbers depend on the machine; the README records one run.
 */
const durationSeconds = Number(process.env.BENCH_SECONDS ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 32);

const keys = lazyGatewayJwks();
const definitions = Object.values(demoSubgraphs).map((factory) => factory());
const subgraphs = await Promise.all(definitions.map((definition) => startSubgraph(definition, keys)));
const supergraphPath = writeSupergraph(
  subgraphs.map((subgraph, i) => ({ name: subgraph.name, url: subgraph.url, sdl: readSchema(definitions[i]!.schemaFile) })),
);
const env = {
  SUPERGRAPH_PATH: supergraphPath,
  GATEWAY_SIGNING_KEY: gatewaySigningKeyPem(),
  AUTH_GRAPHQL: 'optional',
  DEFAULT_TENANT_ID: 'acme',
  // Throughput of the proxying itself; the limiter has its own benchmark (npm run bench:ratelimit).
  RATE_LIMIT_ENABLED: 'false',
};
const gateway = await spawnGateway({
  ...env,
  NODE_ENV: 'production',
  LOG_LEVEL: 'warn',
});
keys.setUrl(gateway.url);
// A direct call needs what the gateway would add: a context token signed with the same key.
const signer = await ContextSigner.create(loadConfig(env));
const directHeaders = { 'x-gateway-context': await signer.sign(anonymousPrincipal('acme')) };
const catalog = subgraphs.find((subgraph) => subgraph.name === 'catalog')!;

const scenarios = [
  { name: 'catalog subgraph, direct', url: catalog.url, query: '{ products { upc name price } }', headers: directHeaders },
  { name: 'gateway → 1 subgraph', url: `${gateway.url}/graphql`, query: '{ products { upc name price } }', headers: {} },
  {
    headers: {},
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
    headers: { 'content-type': 'application/json', ...scenario.headers },
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
