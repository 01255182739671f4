import type { SubgraphDefinition } from '../../subgraphs/shared/server.js';

/**
 * A subgraph the gateway knows nothing about (not part of the demo), used to prove the gateway
 * works with any supergraph and to inject failures. `delayMs` lets a test keep a request in flight.
 */
export function reviewsSubgraph(options: { delayMs?: () => number } = {}): SubgraphDefinition {
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  return {
    name: 'reviews',
    schemaFile: new URL('../fixtures/reviews.graphql', import.meta.url),
    resolvers: {
      Query: {
        latestReview: async () => {
          const delayedBy = options.delayMs?.() ?? 0;
          if (delayedBy > 0) await sleep(delayedBy);
          return { body: 'Works as advertised', delayedBy };
        },
      },
      Product: {
        __resolveReference: ({ upc }: { upc: string }) => ({ upc }),
        reviewCount: ({ upc }: { upc: string }) => upc.length,
      },
    },
  };
}
