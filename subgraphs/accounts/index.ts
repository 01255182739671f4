import type { SubgraphContext } from '../shared/context.js';
import { TenantTable, requireTenant } from '../shared/context.js';
import type { SubgraphDefinition } from '../shared/server.js';

interface User {
  id: string;
  name: string;
  email: string;
}

export function accountsSubgraph(): SubgraphDefinition {
  const users = new TenantTable<User>({
    acme: [
      { id: 'u-acme-1', name: 'Alice Adams', email: 'alice@acme.test' },
      { id: 'u-acme-2', name: 'Bob Brown', email: 'bob@acme.test' },
    ],
    globex: [
      { id: 'u-globex-1', name: 'Grace Green', email: 'grace@globex.test' },
      { id: 'u-globex-2', name: 'Hank Hill', email: 'hank@globex.test' },
    ],
  });

  return {
    name: 'accounts',
    schemaFile: new URL('./schema.graphql', import.meta.url),
    resolvers: {
      Query: {
        me: (_: unknown, __: unknown, context: SubgraphContext) =>
          context.userId ? users.get(requireTenant(context), context.userId) : null,
        user: (_: unknown, { id }: { id: string }, context: SubgraphContext) => users.get(requireTenant(context), id),
        users: (_: unknown, __: unknown, context: SubgraphContext) => users.all(requireTenant(context)),
        whoami: (_: unknown, __: unknown, context: SubgraphContext) => context,
      },
      User: {
        __resolveReference: ({ id }: { id: string }, context: SubgraphContext) => users.get(requireTenant(context), id),
      },
    },
  };
}
