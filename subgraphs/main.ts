import { createRemoteJWKSet } from 'jose';
import { demoSubgraphs } from './catalogue.js';
import { startSubgraph } from './shared/server.js';

/**
 * Runs one demo subgraph on its own (as docker-compose does): `node dist/subgraphs/main.js <name>`.
 * GATEWAY_JWKS_URL is where it fetches the keys that sign `x-gateway-context`. It listens on
 * 127.0.0.1 unless HOST says otherwise (docker-compose sets HOST=0.0.0.0), on PORT (4001).
 */
const name = process.argv[2] ?? process.env.SUBGRAPH ?? '';
const factory = demoSubgraphs[name];
const jwksUrl = process.env.GATEWAY_JWKS_URL;
if (!factory || !jwksUrl) {
  process.stderr.write(`usage: GATEWAY_JWKS_URL=<url> [HOST=127.0.0.1] [PORT=4001] subgraphs/main.ts <${Object.keys(demoSubgraphs).join('|')}>\n`);
  process.exit(64);
}
const port = Number(process.env.PORT || 4001);
const host = process.env.HOST || '127.0.0.1';
const running = await startSubgraph(factory(), {
  gatewayKey: createRemoteJWKSet(new URL(jwksUrl)),
  port,
  host,
  logger: true,
}).catch((error: unknown) => {
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== 'EADDRINUSE' && code !== 'EACCES' && code !== 'EADDRNOTAVAIL') throw error;
  // One line, no stack trace: the fix is a setting, not a bug.
  process.stderr.write(`${name} subgraph: cannot listen on ${host}:${port} [${code}]; set PORT (or HOST)\n`);
  process.exit(69); // EX_UNAVAILABLE
});
const stop = () => void running.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
