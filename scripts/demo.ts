import { readFileSync } from 'node:fs';
import { createRemoteJWKSet } from 'jose';
import { parse as parseYaml } from 'yaml';
import { buildGateway } from '../src/app.js';
import { DEV_AUDIENCE, DEV_ISSUER, ensureDevKeys, mintDevToken } from '../src/auth/dev-keys.js';
import { loadConfig } from '../src/config/load.js';
import { demoSubgraphs } from '../subgraphs/catalogue.js';
import { startSubgraph, type RunningSubgraph } from '../subgraphs/shared/server.js';
import { buildLegacyRestService } from '../services/legacy-rest/app.js';

/**
 * `npm start`: the demo subgraphs plus the gateway in one process, all in memory (no Redis needed).
 * Development keys are created on first run in .dev/ (git-ignored) and trusted by this demo only.
 * Subgraphs listen where supergraph/subgraphs.yaml routes them; Ctrl-C stops everything cleanly.
 */
const devKeys = await ensureDevKeys();
const LEGACY_REST_PORT = 4010;
const legacyUrl = `http://127.0.0.1:${LEGACY_REST_PORT}`;
const config = loadConfig({
  // The legacy REST routes of the demo, the seeds' way: one env var per service.
  USERS_SERVICE_URL: legacyUrl,
  ORDERS_SERVICE_URL: legacyUrl,
  WHOAMI_SERVICE_URL: legacyUrl,
  DEFAULT_TENANT_ID: 'acme',
  AUTH_GRAPHQL: 'optional',
  JWT_PUBLIC_KEY_FILE: devKeys.tokenPublicKey,
  JWT_ALGORITHMS: 'ES256',
  JWT_ISSUER: DEV_ISSUER,
  JWT_AUDIENCE: DEV_AUDIENCE,
  GATEWAY_SIGNING_KEY_FILE: devKeys.gatewaySigningKey,
  ...process.env,
});

const composition = parseYaml(readFileSync('supergraph/subgraphs.yaml', 'utf8')) as {
  subgraphs: Record<string, { routing_url: string }>;
};
// Subgraphs trust what the gateway signs; they fetch its keys on their first call.
const gatewayKey = createRemoteJWKSet(new URL(`http://127.0.0.1:${config.port}/.well-known/jwks.json`));
const subgraphs: RunningSubgraph[] = [];
for (const [name, { routing_url }] of Object.entries(composition.subgraphs)) {
  const factory = demoSubgraphs[name];
  if (!factory) throw new Error(`No demo subgraph named ${name}`);
  subgraphs.push(await startSubgraph(factory(), { gatewayKey, port: Number(new URL(routing_url).port) }));
}

const legacyRest = buildLegacyRestService();
await legacyRest.listen({ port: LEGACY_REST_PORT, host: '127.0.0.1' });

const gateway = await buildGateway(config);
const address = await gateway.app.listen({ port: config.port, host: config.host });
await gateway.graphql.started;

const local = `http://localhost:${new URL(address).port}`;

// A few sample alerts, then one every 15 s, so the event stream has something to show.
const sampleAlert = (n: number) =>
  gateway.events.publish('alerts', 'acme', 'alert', JSON.stringify({ n, severity: n % 3 === 0 ? 'high' : 'low', message: `Sample alert #${n}` }));
for (let n = 1; n <= 3; n++) await sampleAlert(n);
let alertNumber = 3;
const alertTimer = setInterval(() => void sampleAlert(++alertNumber), 15_000);
alertTimer.unref();
const aliceToken = await mintDevToken({ sub: 'u-acme-1', tenant: 'acme', roles: ['admin'], permissions: ['read:orders', 'write:orders'] });
console.log(`
Gateway ready:  ${local}/graphql   (health: ${local}/health/ready)
Subgraphs:      ${subgraphs.map((s) => `${s.name} ${s.url}`).join('\n                ')}
Legacy REST:    ${legacyUrl} behind ${config.routes.map((r) => r.prefix).join(', ')}

Anonymous callers see tenant "acme" (DEFAULT_TENANT_ID); signed-in users see their own tenant.
  curl -s ${local}/graphql -H 'content-type: application/json' \\
    -d '{"query":"{ orders { id buyer { name } items { quantity product { name price inStock shippingEstimate } } } }"}'

A development token for Alice (acme, admin), valid 8 hours:
  export TOKEN=${aliceToken}
  curl -s ${local}/graphql -H 'content-type: application/json' -H "authorization: Bearer $TOKEN" \\
    -d '{"query":"{ me { name email orders { id } } }"}'
Mint others with: npm run token -- --sub u-globex-1 --tenant globex --roles viewer

Legacy REST routes pass through unchanged, with the same auth and tenant checks:
  curl -s ${local}/api/v1/users -H "authorization: Bearer $TOKEN"

Live alerts for tenant acme (Server-Sent Events; replays from Last-Event-ID):
  curl -N ${local}/api/v1/alerts/stream -H "authorization: Bearer $TOKEN" -H 'last-event-id: 0-0'

Ctrl-C stops everything.
`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  gateway.beginShutdown();
  await gateway.app.close();
  await Promise.all([...subgraphs.map((s) => s.close()), legacyRest.close()]);
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
