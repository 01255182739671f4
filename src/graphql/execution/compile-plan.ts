import type { Operation } from '@apollo/federation-internals';
import type { FetchNode, PlanNode, QueryPlan } from '@apollo/query-planner';
import type { GraphQLSchema } from 'graphql';
import { compileExtractor, type Extractor } from './representations.js';
import { compileResponseShaper, unsupportedShape, type ResponseShaper } from './response-shaper.js';

/** What one query plan needs at run time, built on its first execution and kept with the plan. */
export interface CompiledPlan {
  readonly node: PlanNode | undefined;
  readonly operation: Operation;
  readonly shaper: ResponseShaper;
  readonly extractors: ReadonlyMap<FetchNode, Extractor>;
}

export type Compilation = { ok: true; plan: CompiledPlan } | { ok: false; reason: string };

/**
 * Compiles a plan, or says why it stays with the stock executor: @defer, subscriptions, contextual
 * arguments (@fromContext) and schema introspection are left to @apollo/gateway, decided once per plan.
 */
export function compilePlan(queryPlan: QueryPlan, operation: Operation, supergraphSchema: GraphQLSchema): Compilation {
  const root = queryPlan.node;
  if (root?.kind === 'Subscription') return { ok: false, reason: 'subscription' };
  const extractors = new Map<FetchNode, Extractor>();
  const visit = (node: PlanNode): string | null => {
    switch (node.kind) {
      case 'Sequence':
      case 'Parallel':
        for (const child of node.nodes) {
          const reason = visit(child);
          if (reason) return reason;
        }
        return null;
      case 'Flatten':
        return visit(node.node);
      case 'Condition':
        return (node.ifClause && visit(node.ifClause)) || (node.elseClause && visit(node.elseClause)) || null;
      case 'Fetch':
        if (node.contextRewrites?.length) return 'contextual arguments (@fromContext)';
        if (node.requires) extractors.set(node, compileExtractor(supergraphSchema, node.requires));
        return null;
      default:
        return `${node.kind} node`;
    }
  };
  const reason = (root && visit(root)) || unsupportedShape(operation);
  if (reason) return { ok: false, reason };
  return { ok: true, plan: { node: root, operation, shaper: compileResponseShaper(operation), extractors } };
}
