import { fork } from 'node:child_process';
import { ApolloGateway, RemoteGraphQLDataSource, type GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { HEAVY_QUERY, startShop } from '../test/helpers/shop-subgraphs.js';
import { FastApolloGateway } from '../src/graphql/execution/fast-gateway.js';

/**
 * Answers each distinct subgraph request once for real, then from its recorded JSON text (parsed
 * per call, as a transport would), so the figure is the gateway's work, not the subgraphs'.
 */
class ReplayDataSource extends RemoteGraphQLDataSource {
  private readonly recorded = new Map<string, string>();
  override async process(options: GraphQLDataSourceProcessOptions) {
    const key = `${options.request.query}\0${JSON.stringify(options.request.variables)}`;
    const text = this.recorded.get(key);
    if (text !== undefined) return JSON.parse(text);
    const response = await super.process(options);
    this.recorded.set(key, JSON.stringify(response));
    return response;
  }
}

/**
 * `npx tsx scripts/bench-executor.ts`: stock Apollo Gateway execution vs ours on the heavy benchmark
 * query, in one process, one after the other, through Apollo Server's `executeOperation` (no HTTP on
 * the gateway side, so the figure is planning + execution + result shaping). The subgraphs run in a
 * child process so their CPU is not counted. Reports gateway CPU ms per operation.
 */
if (process.argv[2] === 'subgraphs') {
  const shop = await startShop({ users: Number(process.env.SHOP_USERS ?? 6) });
  process.send!({ supergraphSdl: shop.supergraphSdl });
} else {
  const child = fork(new URL(import.meta.url).pathname, ['subgraphs'], { execArgv: ['--import', 'tsx'] });
  process.on('exit', () => child.kill()); // also when a run fails: no subgraph process left behind
  const { supergraphSdl } = await new Promise<{ supergraphSdl: string }>((resolve) => child.once('message', (m) => resolve(m as { supergraphSdl: string })));
  const seconds = Number(process.env.BENCH_SECONDS ?? 5);
  const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 10);
  const only = process.env.BENCH_ONLY;
  const rows: Record<string, unknown>[] = [];
  for (const [name, Gateway] of [['stock', ApolloGateway], ['ours', FastApolloGateway]] as const) {
    if (only && only !== name) continue;
    const server = new ApolloServer({ gateway: new Gateway({ supergraphSdl, buildService: ({ url }) => new ReplayDataSource({ url }) }) });
    await server.start();
    const run = async () => {
      const response = await server.executeOperation({ query: HEAVY_QUERY });
      if (response.body.kind !== 'single' || response.body.singleResult.errors) throw new Error(JSON.stringify(response.body).slice(0, 2000));
      return response.body.singleResult;
    };
    const sample = await run();
    for (let i = 0; i < 50; i++) await run(); // warm-up
    let count = 0;
    const cpu = process.cpuUsage();
    const started = performance.now();
    const deadline = started + seconds * 1000;
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        await run();
        count++;
      }
    }));
    const used = process.cpuUsage(cpu);
    const elapsed = performance.now() - started;
    rows.push({
      gateway: name,
      'ops/s': Math.round((count / elapsed) * 1000),
      'cpu ms/op': Number(((used.user + used.system) / 1000 / count).toFixed(2)),
      'response KB': Math.round(JSON.stringify(sample).length / 1024),
    });
    await server.stop();
  }
  console.table(rows);
  child.kill();
}
