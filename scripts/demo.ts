import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { buildGateway } from '../src/app.js';
import { loadConfig } from '../src/config/load.js';
import { demoSubgraphs } from '../subgraphs/catalogue.js';
import { startSubgraph, type RunningSubgraph } from '../subgraphs/shared/server.js';

/**
 * `npm start`: the demo subgraphs plus the gateway in one process, all in memory (no Redis needed).
 * Subgraphs listen where supergraph/subgraphs.yaml routes them; Ctrl-C stops everything cleanly.
 */
const composition = parseYaml(readFileSync('supergraph/subgraphs.yaml', 'utf8')) as {
  subgraphs: Record<string, { routing_url: string }>;
};

const subgraphs: RunningSubgraph[] = [];
for (const [name, { routing_url }] of Object.entries(composition.subgraphs)) {
  const factory = demoSubgraphs[name];
  if (!factory) throw new Error(`No demo subgraph named ${name}`);
  subgraphs.push(await startSubgraph(factory(), { port: Number(new URL(routing_url).port) }));
}

// Anonymous demo callers see the `acme` tenant unless DEFAULT_TENANT_ID says otherwise.
const config = loadConfig({ DEFAULT_TENANT_ID: 'acme', ...process.env });
const gateway = buildGateway(config);
const address = await gateway.app.listen({ port: config.port, host: config.host });
await gateway.graphql.started;

const local = address.replace('0.0.0.0', 'localhost');
console.log(`
Gateway ready:  ${local}/graphql   (health: ${local}/health/ready)
Subgraphs:      ${subgraphs.map((s) => `${s.name} ${s.url}`).join('\n                ')}

Try:
  curl -s ${local}/graphql -H 'content-type: application/json' \\
    -d '{"query":"{ orders { id buyer { name email } items { quantity product { name price inStock shippingEstimate } } } }"}'

Ctrl-C stops everything.
`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  gateway.beginShutdown();
  await gateway.app.close();
  await Promise.all(subgraphs.map((s) => s.close()));
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
