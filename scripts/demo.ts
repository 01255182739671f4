import { readFileSync } from 'node:fs';
import { isIPv6, type AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { createRemoteJWKSet, type JWTVerifyGetKey } from 'jose';
import { parse as parseYaml } from 'yaml';
import { buildGateway, type Gateway } from '../src/app.js';
import { DEV_AUDIENCE, DEV_ISSUER, ensureDevKeys, mintDevToken } from '../src/auth/dev-keys.js';
import { ConfigError, loadConfig } from '../src/config/load.js';
import { subgraphEnvName } from '../src/config/schema.js';
import { demoSubgraphs } from '../subgraphs/catalogue.js';
import { startSubgraph, type RunningSubgraph } from '../subgraphs/shared/server.js';
import { buildLegacyRestService } from '../services/legacy-rest/app.js';

/**
 * `npm start`: the demo subgraphs, a legacy REST service and the gateway in one process, all in
 * memory (no Redis needed). Development keys are created on first run in .dev/ (git-ignored) and
 * trusted by this demo only. Ctrl-C (or SIGTERM) stops everything cleanly.
 *
 * It admits anonymous callers, so it listens on 127.0.0.1 unless HOST says otherwise. Ports:
 * PORT (gateway, 4000), DEMO_SUBGRAPH_BASE_PORT (first subgraph, 4001; the others follow in
 * supergraph/subgraphs.yaml order), DEMO_LEGACY_REST_PORT (4010); 0 picks free ports.
 */
const ENV = {
  host: 'HOST',
  gatewayPort: 'PORT',
  subgraphBasePort: 'DEMO_SUBGRAPH_BASE_PORT',
  legacyRestPort: 'DEMO_LEGACY_REST_PORT',
} as const;
const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_SUBGRAPH_BASE_PORT = 4001;
const DEFAULT_LEGACY_REST_PORT = 4010;
/** sysexits(3): EX_CONFIG for a bad setting, EX_UNAVAILABLE for a port or address we cannot have. */
const EXIT_CONFIG = 78;
const EXIT_UNAVAILABLE = 69;

/** One line on stderr and a non-zero exit: a busy port or a typo deserves no stack trace. */
function fail(message: string, exitCode: number): never {
  process.stderr.write(`npm start: ${message}\n`);
  process.exit(exitCode);
}

/** The environment without empty values, which would otherwise override the demo's defaults with nothing. */
function environment(): Record<string, string> {
  return Object.fromEntries(Object.entries(process.env).filter((entry): entry is [string, string] => Boolean(entry[1])));
}

/** A port from the environment; `count` ports from it on must exist. */
function portSetting(env: Record<string, string>, name: string, fallback: number, count = 1): number {
  const text = env[name];
  if (text === undefined) return fallback;
  const port = Number(text);
  const highest = 65536 - count;
  if (!/^\d+$/.test(text) || port > highest) fail(`${name}=${text} is not a port number (0-${highest}; 0 picks free ports)`, EXIT_CONFIG);
  return port;
}

/** An address to reach a server by: a wildcard listen address is not one. */
function reachableHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return isIPv6(host) ? `[${host}]` : host;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/**
 * A listen error as one line naming the port and the variable that moves it, then exit. `what` says
 * which server it is ("inventory subgraph"). Other errors go on up.
 */
function explainListenError(error: unknown, what: string, port: number, host: string, variable: string, note = ''): never {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') fail(`port ${port} (${what}) is already in use [EADDRINUSE]; set ${variable} to another port${note}`, EXIT_UNAVAILABLE);
  if (code === 'EACCES') fail(`port ${port} (${what}) needs privileges [EACCES]; set ${variable} to a port above 1023${note}`, EXIT_UNAVAILABLE);
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') {
    fail(`cannot listen on ${ENV.host}=${host} [${code}]; set ${ENV.host} to an address of this machine`, EXIT_UNAVAILABLE);
  }
  throw error;
}

/** Where a listening server is reached (its real port: the setting may have been 0). */
function listeningUrl(app: FastifyInstance, host: string): string {
  return `http://${reachableHost(host)}:${(app.server.address() as AddressInfo).port}`;
}

async function listen(app: FastifyInstance, what: string, port: number, host: string, variable: string): Promise<string> {
  await app.listen({ port, host }).catch((error: unknown) => explainListenError(error, what, port, host, variable));
  return listeningUrl(app, host);
}

/** Subgraph names in composition order: the order DEMO_SUBGRAPH_BASE_PORT counts them in. */
function composedSubgraphNames(): string[] {
  const composition = parseYaml(readFileSync('supergraph/subgraphs.yaml', 'utf8')) as { subgraphs: Record<string, unknown> };
  return Object.keys(composition.subgraphs);
}

/**
 * Subgraphs trust what the gateway signs and fetch its keys on their first call; the gateway's URL
 * is only known once it listens (PORT may be 0), so the key set is attached then.
 */
function lateGatewayKey(): { gatewayKey: JWTVerifyGetKey; attach(gatewayUrl: string): void } {
  let jwks: JWTVerifyGetKey | null = null;
  return {
    gatewayKey: (header, token) => {
      if (!jwks) throw new Error('the gateway is not listening yet');
      return jwks(header, token);
    },
    attach: (gatewayUrl) => {
      jwks = createRemoteJWKSet(new URL(`${gatewayUrl}/.well-known/jwks.json`));
    },
  };
}

async function main(): Promise<void> {
  const env = environment();
  const host = env[ENV.host] ?? DEFAULT_HOST;
  const names = composedSubgraphNames();
  const basePort = portSetting(env, ENV.subgraphBasePort, DEFAULT_SUBGRAPH_BASE_PORT, names.length);
  const legacyRestPort = portSetting(env, ENV.legacyRestPort, DEFAULT_LEGACY_REST_PORT);
  const devKeys = await ensureDevKeys();
  const keys = lateGatewayKey();

  const subgraphs: { running: RunningSubgraph; url: string }[] = [];
  for (const [index, name] of names.entries()) {
    const factory = demoSubgraphs[name];
    if (!factory) throw new Error(`No demo subgraph named ${name}`);
    const port = basePort === 0 ? 0 : basePort + index;
    const running = await startSubgraph(factory(), { gatewayKey: keys.gatewayKey, port, host }).catch((error: unknown) =>
      explainListenError(error, `${name} subgraph`, port, host, ENV.subgraphBasePort, ` (the ${names.length} subgraphs take consecutive ports from it; 0 picks free ones)`),
    );
    subgraphs.push({ running, url: `${listeningUrl(running.app, host)}/graphql` });
  }
  // The committed supergraph routes to 127.0.0.1:4001-4004; the gateway follows the ports in use.
  const subgraphUrls = Object.fromEntries(subgraphs.map(({ running, url }) => [`SUBGRAPH_${subgraphEnvName(running.name)}_URL`, url]));

  const legacyRest = buildLegacyRestService();
  const legacyUrl = await listen(legacyRest, 'legacy REST service', legacyRestPort, host, ENV.legacyRestPort);

  let config;
  try {
    config = loadConfig({
      // The legacy REST routes of the demo, the seeds' way: one env var per service.
      USERS_SERVICE_URL: legacyUrl,
      ORDERS_SERVICE_URL: legacyUrl,
      WHOAMI_SERVICE_URL: legacyUrl,
      ...subgraphUrls,
      DEFAULT_TENANT_ID: 'acme',
      AUTH_GRAPHQL: 'optional',
      JWT_PUBLIC_KEY_FILE: devKeys.tokenPublicKey,
      JWT_ALGORITHMS: 'ES256',
      JWT_ISSUER: DEV_ISSUER,
      JWT_AUDIENCE: DEV_AUDIENCE,
      GATEWAY_SIGNING_KEY_FILE: devKeys.gatewaySigningKey,
      ...env,
      [ENV.host]: host,
    });
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message.replace(/\n\s*/g, ' '), EXIT_CONFIG);
    throw error;
  }

  const gateway = await buildGateway(config);
  const local = await listen(gateway.app, 'gateway', config.port, host, ENV.gatewayPort);
  keys.attach(local);
  await gateway.graphql.started;

  await publishSampleAlerts(gateway.events);
  const aliceToken = await mintDevToken({ sub: 'u-acme-1', tenant: 'acme', roles: ['admin'], permissions: ['read:orders', 'write:orders'] });
  printBanner({
    local,
    host,
    subgraphs: subgraphs.map(({ running, url }) => `${running.name} ${url}`),
    legacyUrl,
    prefixes: config.routes.map((route) => route.prefix),
    aliceToken,
  });

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await gateway.shutdown();
    await Promise.all([...subgraphs.map(({ running }) => running.close()), legacyRest.close()]);
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

/** A few sample alerts, then one every 15 s, so the event stream has something to show. */
async function publishSampleAlerts(events: Gateway['events']): Promise<void> {
  const sampleAlert = (n: number) =>
    events.publish('alerts', 'acme', 'alert', JSON.stringify({ n, severity: n % 3 === 0 ? 'high' : 'low', message: `Sample alert #${n}` }));
  for (let n = 1; n <= 3; n++) await sampleAlert(n);
  let alertNumber = 3;
  setInterval(() => void sampleAlert(++alertNumber), 15_000).unref();
}

function printBanner(demo: { local: string; host: string; subgraphs: string[]; legacyUrl: string; prefixes: string[]; aliceToken: string }): void {
  const { local } = demo;
  const exposure = isLoopback(demo.host)
    ? `Listening on ${demo.host}: this machine only (anonymous callers are admitted); set HOST=0.0.0.0 to expose it.`
    : `Listening on ${demo.host} (HOST): anonymous callers are admitted from wherever that address is reachable.`;
  console.log(`
Gateway ready:  ${local}/graphql   (health: ${local}/health/ready)
Subgraphs:      ${demo.subgraphs.join('\n                ')}
Legacy REST:    ${demo.legacyUrl} behind ${demo.prefixes.join(', ')}
${exposure}

Anonymous callers see tenant "acme" (DEFAULT_TENANT_ID); signed-in users see their own tenant.
  curl -s ${local}/graphql -H 'content-type: application/json' \\
    -d '{"query":"{ orders { id buyer { name } items { quantity product { name price inStock shippingEstimate } } } }"}'

A development token for Alice (acme, admin), valid 8 hours:
  export TOKEN=${demo.aliceToken}
  curl -s ${local}/graphql -H 'content-type: application/json' -H "authorization: Bearer $TOKEN" \\
    -d '{"query":"{ me { name email orders { id } } }"}'
Mint others with: npm run token -- --sub u-globex-1 --tenant globex --roles viewer   (--help lists the options)

Legacy REST routes pass through unchanged, with the same auth and tenant checks:
  curl -s ${local}/api/v1/users -H "authorization: Bearer $TOKEN"

Live alerts for tenant acme (Server-Sent Events; replays from Last-Event-ID):
  curl -N ${local}/api/v1/alerts/stream -H "authorization: Bearer $TOKEN" -H 'last-event-id: 0-0'

Ctrl-C stops everything.
`);
}

main().catch((error: unknown) => fail(`the demo failed to start: ${error instanceof Error ? error.message : String(error)}`, 1));
