import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRemoteJWKSet, type JWTVerifyGetKey } from 'jose';
import { buildGateway, type BuildOptions, type Gateway } from '../../src/app.js';
import { composeSubgraphs } from '../../src/composition/compose.js';
import { loadConfig } from '../../src/config/load.js';
import { demoSubgraphs } from '../../subgraphs/catalogue.js';
import { readSchema, startSubgraph, type RunningSubgraph, type SubgraphDefinition } from '../../subgraphs/shared/server.js';
import { TEST_AUDIENCE, TEST_ISSUER, TestIssuer } from './issuer.js';

export interface Stack {
  url: string;
  gateway: Gateway;
  issuer: TestIssuer;
  subgraphs: Record<string, RunningSubgraph>;
  supergraphPath: string;
  /** `authorization` header with a fresh token for these claims. */
  bearer(claims?: Record<string, unknown>): Promise<{ authorization: string }>;
  close(): Promise<void>;
}

/** Composes running subgraphs (at their real port-0 URLs) into a supergraph file in a fresh temp dir. */
export function writeSupergraph(subgraphs: readonly { name: string; url: string; sdl: string }[], dir?: string): string {
  const outcome = composeSubgraphs(subgraphs);
  if (!outcome.ok) throw new Error(`composition failed: ${JSON.stringify(outcome.errors)}`);
  const path = join(dir ?? mkdtempSync(join(tmpdir(), 'gw-supergraph-')), 'supergraph.graphql');
  writeFileSync(path, outcome.supergraphSdl);
  return path;
}

/** An Ed25519 key for the gateway to sign `x-gateway-context` with (PKCS#8 PEM). */
export function gatewaySigningKeyPem(): string {
  return generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/**
 * A subgraph-side key resolver for a gateway that is not listening yet: it fetches the gateway's
 * JWKS (for real, over HTTP) once `setUrl` has been called.
 */
export function lazyGatewayJwks(): { gatewayKey: JWTVerifyGetKey; setUrl(url: string): void } {
  let jwks: JWTVerifyGetKey | null = null;
  return {
    gatewayKey: (header, token) => {
      if (!jwks) throw new Error('gateway not started');
      return jwks(header, token);
    },
    setUrl: (url) => {
      jwks = createRemoteJWKSet(new URL(`${url}/.well-known/jwks.json`));
    },
  };
}

export interface StackOptions extends BuildOptions {
  /** Subgraphs to run; defaults to all demo subgraphs. */
  definitions?: SubgraphDefinition[];
  env?: Record<string, string>;
  configure?: Record<string, { configure?: Parameters<typeof startSubgraph>[1]['configure'] }>;
  issuer?: TestIssuer;
  /** Extra routes on the gateway (before it listens), e.g. to exercise the pipeline on REST-style routes. */
  routes?: (app: Gateway['app']) => void;
}

/** Real subgraphs on port 0, a supergraph composed from them, and the gateway on port 0 in front. */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const issuer = options.issuer ?? (await TestIssuer.create());
  const keys = lazyGatewayJwks();
  const definitions = options.definitions ?? Object.values(demoSubgraphs).map((factory) => factory());
  const running = await Promise.all(
    definitions.map((definition) =>
      startSubgraph(definition, { gatewayKey: keys.gatewayKey, configure: options.configure?.[definition.name]?.configure }),
    ),
  );
  const supergraphPath = writeSupergraph(
    running.map((subgraph, i) => ({ name: subgraph.name, url: subgraph.url, sdl: readSchema(definitions[i]!.schemaFile) })),
  );
  const config = loadConfig({
    SUPERGRAPH_PATH: supergraphPath,
    LOG_LEVEL: 'silent',
    PORT: '0',
    AUTH_GRAPHQL: 'optional',
    JWT_PUBLIC_KEY: await issuer.publicKeyPem(),
    JWT_ALGORITHMS: issuer.alg,
    JWT_ISSUER: TEST_ISSUER,
    JWT_AUDIENCE: TEST_AUDIENCE,
    GATEWAY_SIGNING_KEY: gatewaySigningKeyPem(),
    // Rate limits are exercised by their own tests; elsewhere they would only make tests order-dependent.
    RATE_LIMIT_ENABLED: 'false',
    ...options.env,
  });
  const gateway = await buildGateway(config, options);
  options.routes?.(gateway.app);
  const address = await gateway.app.listen({ port: 0, host: '127.0.0.1' });
  keys.setUrl(address);
  await gateway.graphql.started;
  return {
    url: address,
    gateway,
    issuer,
    subgraphs: Object.fromEntries(running.map((subgraph) => [subgraph.name, subgraph])),
    supergraphPath,
    bearer: async (claims = {}) => ({ authorization: `Bearer ${await issuer.mint(claims)}` }),
    async close() {
      await gateway.app.close();
      await Promise.all(running.map((subgraph) => subgraph.close()));
    },
  };
}

export interface GraphQLResult {
  status: number;
  headers: Headers;
  body: {
    data?: Record<string, unknown> | null;
    errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, unknown> }[];
  };
}

export async function postGraphQL(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<GraphQLResult> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as GraphQLResult['body'] };
}
