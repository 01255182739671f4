import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { startStandaloneServer } from '@apollo/server/standalone';
import { buildSubgraphSchema } from '@apollo/subgraph';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import { GraphQLError, parse } from 'graphql';
import { composeSubgraphs } from '../../src/composition/compose.js';
import { readSchema } from '../../subgraphs/shared/server.js';

/**
 * Four subgraphs in the shape of The Guild's federation benchmark (accounts, products, inventory,
 * reviews), plus what a differential test needs and the demo schema lacks: an interface, a union, an
 * @inaccessible field used by @requires, a mutation, and fields that fail or return null on purpose.
 * Plain Apollo subgraphs (no gateway-context check), so any gateway can call them.
 */
export interface ShopOptions {
  users?: number;
  reviewsPerUser?: number;
  products?: number;
}

interface User { id: string; name: string; username: string; birthday: number }
interface Product { upc: string; name: string; price: number; weight: number; internalCode: string }
interface Review { id: string; body: string; authorId: string; upc: string }

export function shopData({ users = 6, reviewsPerUser = 3, products = 5 }: ShopOptions = {}) {
  const userList: User[] = Array.from({ length: users }, (_, i) => ({
    id: `u${i + 1}`, name: `User ${i + 1}`, username: `user${i + 1}`, birthday: 1_000_000 + i,
  }));
  const productList: Product[] = Array.from({ length: products }, (_, i) => ({
    upc: `p${i + 1}`, name: `Product ${i + 1}`, price: 100 * (i + 1), weight: 10 + i, internalCode: `IC-${i + 1}`,
  }));
  // Only reachable with topProducts(first: > products): its inventory and one of its reviews fail.
  const failing: Product = { upc: 'p-err', name: 'Failing product', price: 1, weight: 1, internalCode: 'IC-ERR' };
  const reviews: Review[] = userList.flatMap((user, i) =>
    Array.from({ length: reviewsPerUser }, (_, k) => ({
      id: `r${i * reviewsPerUser + k + 1}`, body: `Review ${k + 1} by ${user.username}`, authorId: user.id,
      upc: productList[(i * reviewsPerUser + k) % productList.length]!.upc,
    })),
  );
  // Reviews of the failing product, by an author whose account lookup fails: outside the heavy query.
  reviews.push({ id: 'r-bad', body: 'rating fails', authorId: 'u-boom', upc: failing.upc });
  reviews.push({ id: 'r-err-ok', body: 'fine', authorId: 'u-boom', upc: failing.upc });
  return { users: userList, products: productList, failing, reviews };
}

export function shopDefinitions(options: ShopOptions = {}) {
  const data = shopData(options);
  const userById = new Map(data.users.map((u) => [u.id, u]));
  const allProducts = [...data.products, data.failing];
  const productByUpc = new Map(allProducts.map((p) => [p.upc, p]));
  const reviewById = new Map(data.reviews.map((r) => [r.id, r]));
  const media = [
    { __typename: 'Book', id: 'b1', title: 'A Book', pages: 320, writerId: 'u1', format: 'HARDCOVER' },
    { __typename: 'Movie', id: 'm1', title: 'A Movie', minutes: 95, released: '2024-05-01T00:00:00Z', rating: 7.5 },
    { __typename: 'Book', id: 'b2', title: 'Unknown writer', pages: 12, writerId: 'nobody', format: 'PAPERBACK' },
  ];
  const schemaFile = (name: string) => new URL(`../fixtures/shop/${name}.graphql`, import.meta.url);
  const definitions: { name: string; schemaFile: URL; resolvers: GraphQLResolverMap<unknown> }[] = [
    {
      name: 'accounts',
      schemaFile: schemaFile('accounts'),
      resolvers: {
        Query: {
          me: () => data.users[0],
          user: (_: unknown, { id }: { id: string }) => userById.get(id) ?? null,
          users: () => data.users,
        },
        User: {
          __resolveReference: ({ id }: { id: string }) => {
            if (id === 'u-boom') throw new GraphQLError('account store unavailable', { extensions: { code: 'ACCOUNTS_DOWN' } });
            return userById.get(id) ?? null;
          },
        },
      },
    },
    {
      name: 'products',
      schemaFile: schemaFile('products'),
      resolvers: {
        Query: {
          topProducts: (_: unknown, { first }: { first: number }) => allProducts.slice(0, first),
          media: () => media,
          search: (_: unknown, { term }: { term: string }) => {
            if (term === 'boom') throw new GraphQLError('search is down');
            return [media[0], data.products[0], media[1], null];
          },
        },
        Product: { __resolveReference: ({ upc }: { upc: string }) => productByUpc.get(upc) ?? null },
        Media: { __resolveType: (m: { __typename: string }) => m.__typename },
        SearchResult: { __resolveType: (r: { __typename?: string }) => r.__typename ?? 'Product' },
        Book: {
          pages: (b: { id: string; pages: number }) => (b.id === 'b2' ? null : b.pages),
          writer: (b: { writerId: string }) => ({ id: b.writerId }),
        },
      },
    },
    {
      name: 'inventory',
      schemaFile: schemaFile('inventory'),
      resolvers: {
        Product: {
          __resolveReference: (ref: { upc: string; price?: number; weight?: number; internalCode?: string }) => ref,
          inStock: ({ upc }: { upc: string }) => {
            if (upc === 'p-err') throw new GraphQLError('inventory lookup failed', { extensions: { code: 'INVENTORY_DOWN' } });
            return upc.length % 2 === 0;
          },
          shippingEstimate: ({ upc, price, weight, internalCode }: { upc: string; price: number; weight: number; internalCode: string }) =>
            upc === 'p-err' ? null : price > 300 ? 0 : weight * 2 + internalCode.length,
        },
      },
    },
    {
      name: 'reviews',
      schemaFile: schemaFile('reviews'),
      resolvers: {
        Query: { review: (_: unknown, { id }: { id: string }) => reviewById.get(id) ?? null },
        Mutation: {
          addReview: (_: unknown, { upc, body }: { upc: string; body: string }) => ({ id: `new-${upc}`, body, authorId: 'u1', upc }),
        },
        Review: {
          rating: (r: Review) => {
            if (r.id === 'r-bad') throw new GraphQLError('rating unavailable');
            return (r.body.length % 5) + 1;
          },
          author: (r: Review) => ({ id: r.authorId, username: userById.get(r.authorId)?.username ?? null }),
          product: (r: Review) => ({ upc: r.upc }),
        },
        User: {
          __resolveReference: ({ id }: { id: string }) => ({ id }),
          reviews: ({ id }: { id: string }) => data.reviews.filter((r) => r.authorId === id),
        },
        Product: {
          __resolveReference: ({ upc }: { upc: string }) => ({ upc }),
          reviews: ({ upc }: { upc: string }) => data.reviews.filter((r) => r.upc === upc),
        },
      },
    },
  ];
  return definitions;
}

export interface RunningShop {
  subgraphs: { name: string; url: string }[];
  supergraphSdl: string;
  close(): Promise<void>;
}

/** Starts the four subgraphs on port 0 and composes their supergraph. */
export async function startShop(options: ShopOptions = {}): Promise<RunningShop> {
  const servers = await Promise.all(
    shopDefinitions(options).map(async (definition) => {
      const sdl = readSchema(definition.schemaFile);
      const server = new ApolloServer({
        schema: buildSubgraphSchema({ typeDefs: parse(sdl), resolvers: definition.resolvers }),
        includeStacktraceInErrorResponses: false,
        plugins: [ApolloServerPluginInlineTraceDisabled()],
      });
      const { url } = await startStandaloneServer(server, { listen: { port: 0, host: '127.0.0.1' } });
      return { name: definition.name, url, sdl, server };
    }),
  );
  const composed = composeSubgraphs(servers.map(({ name, url, sdl }) => ({ name, url, sdl })));
  if (!composed.ok) throw new Error(`composition failed: ${JSON.stringify(composed.errors)}`);
  return {
    subgraphs: servers.map(({ name, url }) => ({ name, url })),
    supergraphSdl: composed.supergraphSdl,
    close: async () => {
      await Promise.all(servers.map(({ server }) => server.stop()));
    },
  };
}

/** The benchmark's heavy query (The Guild's federation benchmark). */
export const HEAVY_QUERY = /* GraphQL */ `
  fragment User on User { id username name }
  fragment Review on Review { id body }
  fragment Product on Product { inStock name price shippingEstimate upc weight }
  query TestQuery {
    users { ...User reviews { ...Review product { ...Product reviews { ...Review author { ...User reviews { ...Review product { ...Product } } } } } } }
    topProducts { ...Product reviews { ...Review author { ...User reviews { ...Review product { ...Product } } } } }
  }
`;
