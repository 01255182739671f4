import type { SubgraphContext } from '../shared/context.js';
import { TenantTable, requireTenant } from '../shared/context.js';
import type { SubgraphDefinition } from '../shared/server.js';

interface Product {
  id: string;
  name: string;
  price: number;
  weight: number;
}

const asProduct = (row: Product | null) => (row ? { upc: row.id, ...row } : null);

export function catalogSubgraph(): SubgraphDefinition {
  const products = new TenantTable<Product>({
    acme: [
      { id: 'acme-anvil', name: 'Anvil', price: 4999, weight: 45000 },
      { id: 'acme-skates', name: 'Rocket Skates', price: 12999, weight: 2300 },
      { id: 'acme-magnet', name: 'Giant Magnet', price: 2999, weight: 8000 },
    ],
    globex: [
      { id: 'globex-lamp', name: 'Hammock Lamp', price: 5900, weight: 1200 },
      { id: 'globex-chair', name: 'Ergonomic Chair', price: 24900, weight: 15000 },
    ],
  });

  return {
    name: 'catalog',
    schemaFile: new URL('./schema.graphql', import.meta.url),
    resolvers: {
      Query: {
        products: (_: unknown, { first }: { first: number }, context: SubgraphContext) =>
          products.all(requireTenant(context)).slice(0, Math.max(0, first)).map(asProduct),
        product: (_: unknown, { upc }: { upc: string }, context: SubgraphContext) =>
          asProduct(products.get(requireTenant(context), upc)),
        search: (_: unknown, { term }: { term: string }, context: SubgraphContext) =>
          products
            .all(requireTenant(context))
            .filter((row) => row.name.toLowerCase().includes(term.toLowerCase()))
            .map(asProduct),
      },
      Product: {
        __resolveReference: ({ upc }: { upc: string }, context: SubgraphContext) =>
          asProduct(products.get(requireTenant(context), upc)),
      },
    },
  };
}
