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
import type { JWTVerifyGetKey } from 'jose';
import { UntrustedCallError, contextFromGatewayToken, type SubgraphContext } from './context.js';

declare module 'fastify' {
  interface FastifyRequest {
    caller: SubgraphContext;
  }
}

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
    gatewayKey,
    port = 0,
    host = '127.0.0.1',
    logger = false,
    configure,
  }: {
    /** Keys the gateway signs `x-gateway-context` with (e.g. `createRemoteJWKSet` on its JWKS). */
    gatewayKey: JWTVerifyGetKey;
    port?: number;
    host?: string;
    logger?: boolean;
    /** Extra hooks or routes, added before the server listens. */
    configure?: (app: FastifyInstance) => void;
  },
): Promise<RunningSubgraph> {
  const schema = buildSubgraphSchema({
    typeDefs: parse(readSchema(definition.schemaFile)),
    // buildSubgraphSchema types resolvers with an `unknown` context; ours is always SubgraphContext.
    resolvers: definition.resolvers as GraphQLResolverMap<unknown>,
  });
  const apollo = new ApolloServer<SubgraphContext>({
    schema,
    includeStacktraceInErrorResponses: false,
    stopOnTerminationSignals: false,
    plugins: [ApolloServerPluginLandingPageDisabled(), ApolloServerPluginInlineTraceDisabled()],
  });
  await apollo.start();

  const app = Fastify({ logger });
  app.decorateRequest('caller', null as unknown as SubgraphContext);
  // Calls that did not come through the gateway are refused before any resolver runs.
  app.addHook('preHandler', async (request, reply) => {
    if (request.routeOptions.url !== '/graphql') return;
    const header = request.headers['x-gateway-context'];
    const traceparent = request.headers.traceparent;
    try {
      request.caller = await contextFromGatewayToken(
        typeof header === 'string' ? header : undefined,
        gatewayKey,
        typeof traceparent === 'string' ? traceparent : undefined,
        typeof request.headers['x-request-id'] === 'string' ? request.headers['x-request-id'] : undefined,
      );
    } catch (error) {
      if (!(error instanceof UntrustedCallError)) throw error;
      request.log.warn({ reason: error.message }, 'refused a call that did not come through the gateway');
      return reply.code(401).send({
        errors: [{ message: 'Calls must come through the gateway', extensions: { code: 'UNAUTHENTICATED' } }],
      });
    }
  });
  await app.register(fastifyApollo(apollo), { context: async (request) => request.caller });
  app.get('/health', async () => ({ status: 'ok', subgraph: definition.name }));
  app.addHook('onClose', async () => apollo.stop());
  configure?.(app);

  const address = await app.listen({ port, host });
  return { name: definition.name, url: `${address}/graphql`, app, close: () => app.close() };
}
