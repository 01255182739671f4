import { GraphQLError } from 'graphql';
import type { SubgraphContext } from '../shared/context.js';
import { TenantTable, requireTenant } from '../shared/context.js';
import type { SubgraphDefinition } from '../shared/server.js';

interface Stock {
  id: string;
  quantity: number;
}

interface ProductRef {
  upc: string;
  price?: number;
  weight?: number;
}

export function inventorySubgraph(): SubgraphDefinition {
  const stock = new TenantTable<Stock>({
    acme: [
      { id: 'acme-anvil', quantity: 12 },
      { id: 'acme-skates', quantity: 0 },
      { id: 'acme-magnet', quantity: 3 },
    ],
    globex: [
      { id: 'globex-lamp', quantity: 40 },
      { id: 'globex-chair', quantity: 5 },
    ],
  });
  const quantityOf = (ref: ProductRef, context: SubgraphContext) =>
    stock.get(requireTenant(context), ref.upc)?.quantity ?? 0;

  return {
    name: 'inventory',
    schemaFile: new URL('./schema.graphql', import.meta.url),
    resolvers: {
      Product: {
        __resolveReference: (ref: ProductRef) => ref,
        quantity: (ref: ProductRef, _: unknown, context: SubgraphContext) => quantityOf(ref, context),
        inStock: (ref: ProductRef, _: unknown, context: SubgraphContext) => quantityOf(ref, context) > 0,
        shippingEstimate: ({ price, weight }: ProductRef) => {
          if (price === undefined || weight === undefined) throw new Error('price and weight are required');
          return price > 10_000 ? 0 : Math.round(weight / 10);
        },
      },
      Mutation: {
        restock: (_: unknown, { upc, quantity }: { upc: string; quantity: number }, context: SubgraphContext) => {
          if (quantity <= 0) {
            throw new GraphQLError('quantity must be positive', { extensions: { code: 'BAD_USER_INPUT' } });
          }
          const tenant = requireTenant(context);
          const current = stock.get(tenant, upc);
          if (!current) throw new GraphQLError(`No product ${upc}`, { extensions: { code: 'NOT_FOUND' } });
          stock.put(tenant, { id: upc, quantity: current.quantity + quantity });
          return { upc };
        },
      },
    },
  };
}
