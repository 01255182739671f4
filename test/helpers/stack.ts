import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildGateway, type BuildOptions, type Gateway } from '../../src/app.js';
import { composeSubgraphs } from '../../src/composition/compose.js';
import { loadConfig } from '../../src/config/load.js';
import { demoSubgraphs } from '../../subgraphs/catalogue.js';
import { readSchema, startSubgraph, type RunningSubgraph, type SubgraphDefinition } from '../../subgraphs/shared/server.js';

export interface Stack {
  url: string;
  gateway: Gateway;
  subgraphs: Record<string, RunningSubgraph>;
  supergraphPath: string;
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

export interface StackOptions extends BuildOptions {
  /** Subgraphs to run; defaults to all demo subgraphs. */
  definitions?: SubgraphDefinition[];
  env?: Record<string, string>;
  configure?: Record<string, Parameters<typeof startSubgraph>[1]>;
}

/** Real subgraphs on port 0, a supergraph composed from them, and the gateway on port 0 in front. */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const definitions = options.definitions ?? Object.values(demoSubgraphs).map((factory) => factory());
  const running = await Promise.all(
    definitions.map((definition) => startSubgraph(definition, options.configure?.[definition.name])),
  );
  const supergraphPath = writeSupergraph(
    running.map((subgraph, i) => ({ name: subgraph.name, url: subgraph.url, sdl: readSchema(definitions[i]!.schemaFile) })),
  );
  const config = loadConfig({ SUPERGRAPH_PATH: supergraphPath, LOG_LEVEL: 'silent', PORT: '0', ...options.env });
  const gateway = buildGateway(config, options);
  const address = await gateway.app.listen({ port: 0, host: '127.0.0.1' });
  await gateway.graphql.started;
  return {
    url: address,
    gateway,
    subgraphs: Object.fromEntries(running.map((subgraph) => [subgraph.name, subgraph])),
    supergraphPath,
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
