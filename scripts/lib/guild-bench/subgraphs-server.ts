import { createSubgraphsServer } from './subgraphs.js';

/** The benchmark's subgraphs as their own process (the bench pins it to the load core): PORT on 127.0.0.1. */
const server = createSubgraphsServer();
server.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
