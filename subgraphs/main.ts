import { createRemoteJWKSet } from 'jose';
import { demoSubgraphs } from './catalogue.js';
import { startSubgraph } from './shared/server.js';

/**
 * Runs one demo subgraph on its own (as docker-compose does): `node dist/subgraphs/main.js <name>`.
 * GATEWAY_JWKS_URL is where it fetches the keys that sign `x-gateway-context`.
 */
const name = process.argv[2] ?? process.env.SUBGRAPH ?? '';
const factory = demoSubgraphs[name];
const jwksUrl = process.env.GATEWAY_JWKS_URL;
if (!factory || !jwksUrl) {
  process.stderr.write(`usage: GATEWAY_JWKS_URL=<url> subgraphs/main.ts <${Object.keys(demoSubgraphs).join('|')}>\n`);
  process.exit(64);
}
const port = Number(process.env.PORT ?? 4001);
const running = await startSubgraph(factory(), {
  gatewayKey: createRemoteJWKSet(new URL(jwksUrl)),
  port,
  host: process.env.HOST ?? '0.0.0.0',
  logger: true,
});
const stop = () => void running.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
