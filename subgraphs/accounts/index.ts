import type { SubgraphContext } from '../shared/context.js';
import { TenantTable, requireTenant } from '../shared/context.js';
import { DEMO_USERS } from '../shared/demo-users.js';
import type { SubgraphDefinition } from '../shared/server.js';

interface User {
  id: string;
  name: string;
  email: string;
}

export function accountsSubgraph(): SubgraphDefinition {
  const users = new TenantTable<User>(DEMO_USERS);

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
