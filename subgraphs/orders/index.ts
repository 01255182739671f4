import { GraphQLError } from 'graphql';
import type { SubgraphContext } from '../shared/context.js';
import { TenantTable, requireTenant, requireUser } from '../shared/context.js';
import { DEMO_USERS } from '../shared/demo-users.js';
import type { SubgraphDefinition } from '../shared/server.js';

interface Order {
  id: string;
  buyerId: string;
  buyerName: string;
  items: { upc: string; quantity: number }[];
  placedAt: string;
  internalNotes?: string;
}

const toGraphQL = (order: Order | null) =>
  order && {
    id: order.id,
    buyer: { id: order.buyerId, name: order.buyerName },
    items: order.items.map((item) => ({ product: { upc: item.upc }, quantity: item.quantity })),
    placedAt: order.placedAt,
    internalNotes: order.internalNotes ?? null,
  };

export function ordersSubgraph(): SubgraphDefinition {
  const orders = new TenantTable<Order>({
    acme: [
      {
        id: 'o-acme-1',
        buyerId: 'u-acme-1',
        buyerName: 'Alice Adams',
        items: [
          { upc: 'acme-anvil', quantity: 1 },
          { upc: 'acme-skates', quantity: 2 },
        ],
        placedAt: '2026-01-10T09:00:00.000Z',
        internalNotes: 'Customer asked for gift wrapping',
      },
      {
        id: 'o-acme-2',
        buyerId: 'u-acme-2',
        buyerName: 'Bob Brown',
        items: [{ upc: 'acme-magnet', quantity: 1 }],
        placedAt: '2026-02-02T15:30:00.000Z',
      },
    ],
    globex: [
      {
        id: 'o-globex-1',
        buyerId: 'u-globex-1',
        buyerName: 'Grace Green',
        items: [{ upc: 'globex-chair', quantity: 4 }],
        placedAt: '2026-03-03T12:00:00.000Z',
      },
    ],
  });
  // A local copy of buyer names (services typically keep one from account events): it is what lets
  // this subgraph @provides the name without a call to accounts.
  const buyers = new TenantTable<{ id: string; name: string }>(DEMO_USERS);
  let sequence = 0;

  return {
    name: 'orders',
    schemaFile: new URL('./schema.graphql', import.meta.url),
    resolvers: {
      Query: {
        orders: (_: unknown, __: unknown, context: SubgraphContext) => orders.all(requireTenant(context)).map(toGraphQL),
        order: (_: unknown, { id }: { id: string }, context: SubgraphContext) =>
          toGraphQL(orders.get(requireTenant(context), id)),
      },
      Mutation: {
        placeOrder: (_: unknown, { items }: { items: Order['items'] }, context: SubgraphContext) => {
          const tenant = requireTenant(context);
          const buyerId = requireUser(context);
          if (items.length === 0 || items.some((item) => item.quantity <= 0)) {
            throw new GraphQLError('An order needs at least one item, each with a positive quantity', {
              extensions: { code: 'BAD_USER_INPUT' },
            });
          }
          const order = orders.put(tenant, {
            id: `o-${tenant}-new-${++sequence}`,
            buyerId,
            buyerName: buyers.get(tenant, buyerId)?.name ?? buyerId,
            items,
            placedAt: new Date().toISOString(),
          });
          return toGraphQL(order);
        },
      },
      Order: {
        __resolveReference: ({ id }: { id: string }, context: SubgraphContext) =>
          toGraphQL(orders.get(requireTenant(context), id)),
      },
      User: {
        orders: ({ id }: { id: string }, _: unknown, context: SubgraphContext) =>
          orders
            .all(requireTenant(context))
            .filter((order) => order.buyerId === id)
            .map(toGraphQL),
      },
    },
  };
}
