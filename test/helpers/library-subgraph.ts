import type { SubgraphDefinition } from '../../subgraphs/shared/server.js';

/**
 * A subgraph outside the demo that declares demand-control weights (`@cost`, `@listSize`, federation
 * 2.9), to prove the gateway reads them from whatever supergraph it is given.
 */
export function librarySubgraph(): SubgraphDefinition {
  const books = Array.from({ length: 3 }, (_, i) => ({ id: `b${i}`, title: `Book ${i}`, summary: `About ${i}`, author: { name: `Author ${i}` } }));
  const take = (n: number | null | undefined) => books.slice(0, n ?? books.length);
  return {
    name: 'library',
    schemaFile: new URL('../fixtures/library.graphql', import.meta.url),
    resolvers: {
      Query: {
        searchBooks: (_: unknown, { limit }: { limit?: number | null }) => take(limit),
        shelf: () => books,
        library: (_: unknown, { first }: { first?: number | null }) => ({ edges: take(first).map((node) => ({ node })) }),
      },
      Book: { __resolveReference: ({ id }: { id: string }) => books.find((book) => book.id === id) },
    },
  };
}
