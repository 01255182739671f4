import { createHash } from 'node:crypto';
import type { ApolloServerPlugin } from '@apollo/server';
import { print, type DocumentNode, type GraphQLError, type GraphQLSchema, type OperationDefinitionNode } from 'graphql';
import { LRUCache } from 'lru-cache';
import type { GatewayContext } from '../../context.js';
import { gatewayGraphQLError } from '../../errors.js';
import { authorizationCheck, principalKey } from '../field-authorization.js';
import { applyRemovals, deniedFieldErrors, filterOperation, withoutGuardTypenames, type FilterResult, type Removal } from '../field-guard.js';
import { limitedOccurrences, type FieldRateLimiter, type LimitedOccurrence } from '../field-rate-limits.js';
import {
  costRefusal,
  fragmentMap,
  operationCost,
  structuralVerdict,
  type CostEstimate,
  type OperationLimits,
} from '../operation-limits.js';
import { byteBoundedCache, entryBytes } from './decision-cache.js';
import { SupergraphSnapshots, type SupergraphSnapshot } from './snapshot.js';

/** The operation as one caller may run it: fields they may not see removed (null: nothing removed). */
type Filtered = (FilterResult & { readonly queryHash: string }) | null;

/** The field guard's decision for one document and one principal key, with what is left to rate-limit. */
interface GuardDecision {
  readonly filtered: Filtered;
  /** Rate-limited fields in the operation that will run (denied fields spend no tokens), or null. */
  readonly limited: {
    readonly occurrences: readonly LimitedOccurrence[];
    /** The document and operation the occurrences' nodes belong to: over-limit fields are removed from it. */
    readonly document: DocumentNode;
    readonly operation: OperationDefinitionNode;
  } | null;
  readonly bytes: number;
}

/**
 * Everything about one document (and operation name) that does not depend on the request. Holds no
 * node of the document (refusals carry none), so it stays small whatever the query's size.
 */
interface DocumentAnalysis {
  readonly refusal: GraphQLError | null;
  /** Holds for every request unless `usesVariables`. */
  readonly cost: CostEstimate;
  readonly bytes: number;
}

/** One supergraph's snapshot with the analyses of documents validated against it. */
interface AdmissionState {
  readonly snapshot: SupergraphSnapshot;
  readonly analyses: LRUCache<string, DocumentAnalysis>;
  /** Guard decisions by document and principal key, bounded in total across documents. */
  readonly guards: LRUCache<string, GuardDecision>;
}

/** Memory for the analyses and for the guard decisions of one supergraph (estimated, see decision-cache.ts). */
const ANALYSES_BYTES = 8 * 1024 * 1024;
const GUARD_DECISIONS_BYTES = 64 * 1024 * 1024;

export interface AdmissionOptions {
  readonly limits: OperationLimits;
  readonly rateLimiter: FieldRateLimiter;
  readonly observeCost: (operationType: string, cost: number) => void;
  /** Estimated bytes of guard decisions remembered per supergraph. */
  readonly guardCacheBytes?: number;
  /** Told when the gateway serves a schema no staged supergraph matches (its requests are refused). */
  readonly onUnknownSchema?: (executableSdl: string) => void;
}

export interface Admission {
  readonly plugin: ApolloServerPlugin<GatewayContext>;
  readonly snapshots: SupergraphSnapshots<AdmissionState>;
}

/**
 * The GraphQL admission stage: one Apollo plugin whose `didResolveOperation` runs, in this order,
 * (1) operation resolution, (2) the read-only tenant check, (3) operation limits and cost, (4) the
 * field guard (`@authenticated` / `@requiresScopes`) and (5) field rate limits. A refusal at any step
 * ends admission there, so a refused operation is never walked by the guard and spends no field
 * rate-limit tokens, and fields the guard removed spend none either. Everything that depends only on
 * the document (and the caller's relevant scopes) is computed once per supergraph and cached.
 */
export function admissionStage(options: AdmissionOptions): Admission {
  const { limits, rateLimiter } = options;
  const snapshots = new SupergraphSnapshots<AdmissionState>((snapshot) => ({
    snapshot,
    analyses: byteBoundedCache<DocumentAnalysis>(ANALYSES_BYTES),
    guards: byteBoundedCache<GuardDecision>(options.guardCacheBytes ?? GUARD_DECISIONS_BYTES),
  }), options.onUnknownSchema);

  const analyse = (schema: GraphQLSchema, state: AdmissionState, document: DocumentNode, operation: OperationDefinitionNode, variables: Record<string, unknown>): DocumentAnalysis => {
    const fragments = fragmentMap(document);
    const refusal = structuralVerdict(schema, document, operation, fragments, limits);
    const cost = refusal ? { cost: 0, usesVariables: false } : operationCost(schema, operation, fragments, variables, limits, state.snapshot.costWeights);
    return { refusal, cost, bytes: entryBytes(0, false) };
  };

  const decide = (schema: GraphQLSchema, state: AdmissionState, document: DocumentNode, operation: OperationDefinitionNode, context: GatewayContext, queryCharacters: number): GuardDecision => {
    const check = authorizationCheck(state.snapshot.requirements, context.principal);
    const filtered = check ? withHash(filterOperation(schema, document, operation, check)) : null;
    const running = filtered ? (filtered.document.definitions[0] as OperationDefinitionNode) : operation;
    const base = filtered?.document ?? document;
    const occurrences = limitedOccurrences(schema, base, running, state.snapshot.fieldLimits);
    const limited = occurrences.length > 0 ? { occurrences, document: base, operation: running } : null;
    // Without anything filtered or limited the decision keeps no node, hence no document, alive.
    return { filtered, limited, bytes: entryBytes(queryCharacters, filtered !== null || limited !== null) };
  };

  const plugin: ApolloServerPlugin<GatewayContext> = {
    async requestDidStart() {
      let removals: readonly Removal[] = [];
      let typenames: FilterResult['typenames'] = [];
      let empty = false;
      return {
        async didResolveOperation(requestContext) {
          const { schema, document, operation, queryHash, request, contextValue } = requestContext;
          // (1) The operation to run, and one the gateway can run.
          if (!operation) {
            const message = request.operationName
              ? `Unknown operation named "${request.operationName}".`
              : 'Must provide operation name if query contains multiple operations.';
            throw gatewayGraphQLError('OPERATION_RESOLUTION_FAILURE', message);
          }
          // An operation type without a root type would fail in the planner (500), a subscription in
          // Apollo Gateway's executor: both are the client's mistake.
          if (!schema.getRootType(operation.operation)) {
            throw gatewayGraphQLError('GRAPHQL_VALIDATION_FAILED', `The schema has no "${operation.operation}" root type.`);
          }
          if (operation.operation === 'subscription') {
            throw gatewayGraphQLError('BAD_REQUEST', 'Subscriptions are not supported on /graphql; use the event streams.');
          }
          // (2) A read-only tenant may query but not mutate.
          if (operation.operation === 'mutation' && contextValue.tenantReadOnly) throw gatewayGraphQLError('TENANT_READ_ONLY');

          // (3) Operation limits, then the cost: always measured, refused only over a configured maximum.
          const state = snapshots.for(schema);
          // Never run with another supergraph's rules: refuse (503, retryable) until the right one is bound.
          if (!state) throw gatewayGraphQLError('SUPERGRAPH_NOT_LOADED', 'The admission rules of the served supergraph are not loaded; retry shortly');
          const variables = request.variables ?? {};
          const key = `${queryHash}\0${request.operationName ?? ''}`;
          let analysis = state.analyses.get(key);
          if (!analysis) {
            analysis = analyse(schema, state, document, operation, variables);
            state.analyses.set(key, analysis);
          }
          if (analysis.refusal) throw analysis.refusal;
          const cost = analysis.cost.usesVariables
            ? operationCost(schema, operation, fragmentMap(document), variables, limits, state.snapshot.costWeights).cost
            : analysis.cost.cost;
          contextValue.graphql.estimatedCost = cost;
          options.observeCost(operation.operation, cost);
          const tooComplex = costRefusal(cost, limits);
          if (tooComplex) throw tooComplex;

          // (4) The field guard, decided once per document and principal key.
          const guardKey = `${key}\0${principalKey(state.snapshot.requirements, contextValue.principal)}`;
          let decision = state.guards.get(guardKey);
          if (!decision) {
            decision = decide(schema, state, document, operation, contextValue, requestContext.source?.length ?? document.loc?.end ?? 0);
            state.guards.set(guardKey, decision);
          }

          // (5) Field rate limits on what is left to run.
          let filtered = decision.filtered;
          if (decision.limited) {
            const { occurrences, document: base, operation: running } = decision.limited;
            const overLimit = await rateLimiter.spend(occurrences, variables, contextValue);
            if (overLimit) {
              const limited = filterOperation(schema, base, running, overLimit);
              if (limited) {
                filtered = withHash({
                  ...limited,
                  removals: [...(filtered?.removals ?? []), ...limited.removals],
                  typenames: [...(filtered?.typenames ?? []), ...limited.typenames],
                });
              }
            }
          }
          if (!filtered) return;
          removals = filtered.removals;
          typenames = filtered.typenames;
          empty = filtered.empty;
          // Apollo Gateway plans `document` and caches plans by `queryHash`: both must describe
          // what this caller may see, or another caller's cached plan could be reused.
          const mutable = requestContext as { document: DocumentNode; queryHash: string };
          mutable.document = filtered.document;
          mutable.queryHash = filtered.queryHash;
        },
        async responseForOperation(requestContext) {
          // Nothing the caller may see is left: answer without planning or calling any subgraph.
          if (!empty) return null;
          return { http: requestContext.response.http, body: { kind: 'single', singleResult: { data: {} } } };
        },
        async willSendResponse({ response, contextValue }) {
          if (response.body.kind !== 'single') return;
          const result = response.body.singleResult;
          const estimated = contextValue.graphql.estimatedCost;
          if (limits.costInResponse && estimated !== undefined) {
            result.extensions = { ...result.extensions, cost: { estimated, ...(limits.maxCost === undefined ? {} : { max: limits.maxCost }) } };
          }
          // Refused before execution: nothing was removed from a result.
          if (removals.length === 0 || result.data === undefined) return;
          const data = (result.data ?? null) as Record<string, unknown> | null;
          const denied = deniedFieldErrors(data, removals).map((error) => error.toJSON());
          result.data = withoutGuardTypenames(applyRemovals(data, removals), typenames);
          result.errors = [...denied, ...(result.errors ?? [])];
        },
      };
    },
  };
  return { plugin, snapshots };
}

function withHash(result: FilterResult | null): Filtered {
  return result && { ...result, queryHash: createHash('sha256').update(print(result.document)).digest('hex') };
}
