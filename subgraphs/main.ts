import { demoSubgraphs } from './catalogue.js';
import { startSubgraph } from './shared/server.js';

/** Runs one demo subgraph on its own (as docker-compose does): `tsx subgraphs/main.ts <name>`. */
const name = process.argv[2] ?? process.env.SUBGRAPH ?? '';
const factory = demoSubgraphs[name];
if (!factory) {
  process.stderr.write(`usage: subgraphs/main.ts <${Object.keys(demoSubgraphs).join('|')}>\n`);
  process.exit(64);
}
const port = Number(process.env.PORT ?? 4001);
const running = await startSubgraph(factory(), { port, host: process.env.HOST ?? '0.0.0.0', logger: true });
const stop = () => void running.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
