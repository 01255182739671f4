import { accountsSubgraph } from './accounts/index.js';
import { catalogSubgraph } from './catalog/index.js';
import { inventorySubgraph } from './inventory/index.js';
import { ordersSubgraph } from './orders/index.js';
import type { SubgraphDefinition } from './shared/server.js';

/** The demo subgraphs by name; each call builds fresh in-memory data. */
export const demoSubgraphs: Record<string, () => SubgraphDefinition> = {
  accounts: accountsSubgraph,
  catalog: catalogSubgraph,
  inventory: inventorySubgraph,
  orders: ordersSubgraph,
};
