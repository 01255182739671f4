import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSchema, startSubgraph, type RunningSubgraph } from '../../subgraphs/shared/server.js';
import { spawnGateway } from '../helpers/gateway-process.js';
import { reviewsSubgraph } from '../helpers/reviews-subgraph.js';
import { lazyGatewayJwks, postGraphQL, writeSupergraph } from '../helpers/stack.js';

let delay = 0;
let reviews: RunningSubgraph;
let supergraphPath: string;
const keys = lazyGatewayJwks();
const ENV = { AUTH_GRAPHQL: 'optional' };

beforeAll(async () => {
  const definition = reviewsSubgraph({ delayMs: () => delay });
  reviews = await startSubgraph(definition, keys);
  supergraphPath = writeSupergraph([{ name: 'reviews', url: reviews.url, sdl: readSchema(definition.schemaFile) }]);
});
afterAll(() => reviews.close());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('graceful shutdown (SIGTERM), as a separate process', () => {
  it('stops accepting, completes in-flight requests, and exits 0', async () => {
    const gateway = await spawnGateway({ ...ENV, SUPERGRAPH_PATH: supergraphPath, NODE_ENV: 'production' });
    keys.setUrl(gateway.url);
    delay = 1_200;
    const inFlight = postGraphQL(gateway.url, { query: '{ latestReview { body delayedBy } }' });
    await sleep(300);
    gateway.child.kill('SIGTERM');
    await sleep(100);
    await expect(fetch(`${gateway.url}/health`)).rejects.toThrow();

    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ data: { latestReview: { body: 'Works as advertised', delayedBy: 1200 } } });
    expect(await gateway.exited).toBe(0);
    expect(gateway.logs.some((entry) => entry.msg === 'shutting down: draining in-flight requests')).toBe(true);
  });

  it('bounds the drain: a request outliving SHUTDOWN_TIMEOUT_MS is cut and the process still exits', async () => {
    const gateway = await spawnGateway({ ...ENV, SUPERGRAPH_PATH: supergraphPath, SHUTDOWN_TIMEOUT_MS: '300' });
    keys.setUrl(gateway.url);
    delay = 5_000;
    const inFlight = postGraphQL(gateway.url, { query: '{ latestReview { body } }' }).catch((error: Error) => error);
    await sleep(200);
    const signalledAt = Date.now();
    gateway.child.kill('SIGINT');
    expect(await gateway.exited).toBe(0);
    expect(Date.now() - signalledAt).toBeLessThan(2_500);
    expect(await inFlight).toBeInstanceOf(Error);
  });
});
