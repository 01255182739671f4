import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import { authorOfEveryReview, products, reviews, reviewsOfEveryUser, users, type Product, type Review } from './data.js';
import type { SubgraphName } from './schemas.js';

const userById = new Map(users.map((user) => [user.id, user]));
const productByUpc = new Map(products.map((product) => [product.upc, product]));
const reviewById = new Map(reviews.map((review) => [review.id, review]));

/** Resolvers of each subgraph: each answers only for the fields its SDL owns (entities via __resolveReference). */
export const resolvers: Record<SubgraphName, GraphQLResolverMap<unknown>> = {
  accounts: {
    Query: {
      me: () => users[0],
      user: (_: unknown, { id }: { id: string }) => userById.get(id) ?? null,
      users: () => users,
    },
    User: {
      __resolveReference: ({ id }: { id: string }) => userById.get(id) ?? null,
    },
  },
  inventory: {
    Product: {
      // The gateway sends price and weight (from products) along with the key: @requires.
      __resolveReference: ({ upc, price, weight }: { upc: string; price?: number | null; weight?: number | null }) => {
        const product = productByUpc.get(upc);
        return product ? { upc, price: price ?? null, weight: weight ?? null, inStock: product.inStock } : null;
      },
      shippingEstimate: ({ price, weight }: { price: number | null; weight: number | null }) => {
        if (price === null) return null;
        if (price > 1000) return 0;
        return weight === null ? null : Math.floor(weight / 2);
      },
    },
  },
  products: {
    Query: {
      topProducts: (_: unknown, { first }: { first: number }) => products.slice(0, first),
    },
    Product: {
      __resolveReference: ({ upc }: { upc: string }) => productByUpc.get(upc) ?? null,
    },
  },
  reviews: {
    Review: {
      __resolveReference: ({ id }: { id: string }) => reviewById.get(id) ?? null,
      product: (review: Review) => ({ upc: review.productUpc }),
      author: () => ({ id: authorOfEveryReview.id, username: authorOfEveryReview.username }),
    },
    User: {
      __resolveReference: ({ id }: { id: string }) => ({ id }),
      reviews: () => reviewsOfEveryUser,
    },
    Product: {
      __resolveReference: ({ upc }: { upc: string }) => ({ upc }),
      reviews: (product: Pick<Product, 'upc'>) => reviews.filter((review) => review.productUpc === product.upc),
    },
  },
};
