// @ts-check
import { readFileSync } from 'node:fs';
import { ApolloGateway } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';

/**
 * The benchmark's reference: stock @apollo/gateway behind @apollo/server's standalone server, all
 * defaults (as The Guild's benchmark runs it). SUPERGRAPH_PATH and PORT from the environment.
 * Plain JavaScript run by plain `node`, as it runs in production: under tsx every stack trace is
 * source-mapped, and the HTTP agent of @apollo/gateway's default fetcher (agent-base) reads one on
 * every subgraph call, which cost stock ~3% of its CPU in a profile.
 */
const supergraphSdl = readFileSync(process.env.SUPERGRAPH_PATH ?? '', 'utf8');
const server = new ApolloServer({ gateway: new ApolloGateway({ supergraphSdl }) });
await startStandaloneServer(server, { listen: { port: Number(process.env.PORT), host: '127.0.0.1' } });
// A clean exit on SIGTERM, so --cpu-prof can write its profile.
process.on('SIGTERM', () => {
  server.stop().then(() => process.exit(0), () => process.exit(1));
});
