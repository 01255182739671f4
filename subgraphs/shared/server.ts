import { readFileSync } from 'node:fs';
import { ApolloServer } from '@apollo/server';
import {
  ApolloServerPluginInlineTraceDisabled,
  ApolloServerPluginLandingPageDisabled,
} from '@apollo/server/plugin/disabled';
import { buildSubgraphSchema } from '@apollo/subgraph';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import fastifyApollo from '@as-integrations/fastify';
import Fastify, { type FastifyInstance } from 'fastify';
import { parse } from 'graphql';
import { contextFromHeaders, type SubgraphContext } from './context.js';

export interface SubgraphDefinition {
  name: string;
  /** Path (or file URL) of the subgraph's schema file. */
  schemaFile: URL | string;
  resolvers: GraphQLResolverMap<SubgraphContext>;
}

export interface RunningSubgraph {
  name: string;
  url: string;
  app: FastifyInstance;
  close(): Promise<void>;
}

export function readSchema(file: URL | string): string {
  return readFileSync(file, 'utf8');
}

/** Serves one subgraph over HTTP at `/graphql` (Fastify + Apollo Server), like a real service would. */
export async function startSubgraph(
  definition: SubgraphDefinition,
  {
    port = 0,
    host = '127.0.0.1',
    logger = false,
    configure,
  }: {
    port?: number;
    host?: string;
    logger?: boolean;
    /** Extra hooks or routes, added before the server listens. */
    configure?: (app: FastifyInstance) => void;
  } = {},
): Promise<RunningSubgraph> {
  const schema = buildSubgraphSchema({
    typeDefs: parse(readSchema(definition.schemaFile)),
    // buildSubgraphSchema types resolvers with an `unknown` context; ours is always SubgraphContext.
    resolvers: definition.resolvers as GraphQLResolverMap<unknown>,
  });
  const apollo = new ApolloServer<SubgraphContext>({
    schema,
    includeStacktraceInErrorResponses: false,
    plugins: [ApolloServerPluginLandingPageDisabled(), ApolloServerPluginInlineTraceDisabled()],
  });
  await apollo.start();

  const app = Fastify({ logger });
  await app.register(fastifyApollo(apollo), { context: async (request) => contextFromHeaders(request.headers) });
  app.get('/health', async () => ({ status: 'ok', subgraph: definition.name }));
  app.addHook('onClose', async () => apollo.stop());
  configure?.(app);

  const address = await app.listen({ port, host });
  return { name: definition.name, url: `${address}/graphql`, app, close: () => app.close() };
}
