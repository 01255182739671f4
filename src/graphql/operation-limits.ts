import type { ApolloServerPlugin } from '@apollo/server';
import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import {
  GraphQLError,
  Kind,
  Lexer,
  Source,
  TokenKind,
  getNamedType,
  isInterfaceType,
  isLeafType,
  isListType,
  isNonNullType,
  isObjectType,
  validate,
  type FragmentDefinitionNode,
  type GraphQLCompositeType,
  type GraphQLOutputType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
} from 'graphql';
import { LRUCache } from 'lru-cache';
import { z } from 'zod';
import type { GatewayContext } from '../context.js';

export const operationLimitsSchema = z.strictObject({
  maxCharacters: z.coerce.number().int().positive().default(20_000),
  maxTokens: z.coerce.number().int().positive().default(2_000),
  maxDepth: z.coerce.number().int().positive().default(12),
  maxAliases: z.coerce.number().int().min(0).default(20),
  maxDirectives: z.coerce.number().int().min(0).default(30),
  maxRootFields: z.coerce.number().int().positive().default(20),
  /**
   * Unset (the default): the estimated cost is measured (log line, metric, optional response
   * extension) but never refuses; set: operations above it are refused. Apollo Router's demand
   * control `measure` / `enforce` modes.
   */
  maxCost: z.coerce.number().int().positive().optional(),
  /** Adds `extensions.cost: { estimated, max? }` to every GraphQL response. */
  costInResponse: z.stringbool().or(z.boolean()).default(false),
  /** Field selections after expanding every fragment spread (bounds planning and every later walk). */
  maxFields: z.coerce.number().int().positive().default(5_000),
  /** Cost of resolving one object field; leaves (scalars, enums) cost `scalarCost`. */
  objectCost: z.coerce.number().min(0).default(1),
  scalarCost: z.coerce.number().min(0).default(0),
  /** Assumed length of a list without a `first`/`last`/`limit`/`pageSize` argument. */
  defaultListSize: z.coerce.number().int().positive().default(10),
  /** Per-field cost overrides: `{ "Query.search": 50 }`. */
  fieldCosts: z.record(z.string().regex(/^\w+\.\w+$/), z.coerce.number().min(0)).default({}),
});
export type OperationLimits = z.output<typeof operationLimitsSchema>;
export const OPERATION_LIMIT_DEFAULTS = operationLimitsSchema.parse({});

/** Refusal with its own code and HTTP 400, before Apollo parses, plans or calls a subgraph. */
function refusal(code: string, message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code, http: { status: 400 } } });
}

/**
 * Size checks on the raw query text, run before Apollo parses it: a token bomb never reaches the
 * parser. Counts lexer tokens and stops one past the limit.
 */
export function checkQueryText(query: string, limits: OperationLimits): GraphQLError | null {
  if (query.length > limits.maxCharacters) {
    return refusal('QUERY_TOO_LARGE', `The query has ${query.length} characters; the limit is ${limits.maxCharacters}`);
  }
  const lexer = new Lexer(new Source(query));
  let tokens = 0;
  try {
    for (let token = lexer.advance(); token.kind !== TokenKind.EOF; token = lexer.advance()) {
      if (++tokens > limits.maxTokens) return refusal('TOO_MANY_TOKENS', `The query has more than ${limits.maxTokens} tokens`);
    }
  } catch {
    return null; // a syntax error: Apollo's parser reports it properly
  }
  return null;
}

const LIST_SIZE_ARGUMENTS = ['first', 'last', 'limit', 'pageSize'];

/**
 * Estimated cost of an operation, in the spirit of the IBM/Apollo demand-control model: every object
 * costs `objectCost` (or its field's override), leaves `scalarCost`, and a list multiplies what it
 * contains by its size (the `first`/`last`/`limit`/`pageSize` argument, or `defaultListSize`). graphql-armor's cost rule has no per-field weights or list multipliers, so
 * this one is ours; depth, aliases and directives use graphql-armor's rules.
 */
export function operationCost(
  schema: GraphQLSchema,
  operation: OperationDefinitionNode,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  variables: Record<string, unknown>,
  limits: OperationLimits,
): number {
  // Variables the client left out take their declared defaults.
  const values: Record<string, unknown> = {};
  for (const definition of operation.variableDefinitions ?? []) {
    const fallback = definition.defaultValue;
    if (fallback?.kind === Kind.INT) values[definition.variable.name.value] = Number(fallback.value);
  }
  Object.assign(values, variables);
  const listSize = (args: readonly { name: { value: string }; value: import('graphql').ValueNode }[] | undefined) => {
    for (const argument of args ?? []) {
      if (!LIST_SIZE_ARGUMENTS.includes(argument.name.value)) continue;
      const value = argument.value;
      let size: unknown;
      if (value.kind === Kind.INT) size = Number(value.value);
      if (value.kind === Kind.VARIABLE) size = values[value.name.value];
      // Zero, negative or non-numeric sizes never make a list cheaper than the default.
      if (typeof size === 'number' && Number.isFinite(size) && size > 0) return size;
    }
    return limits.defaultListSize;
  };
  const isList = (type: GraphQLOutputType) => isListType(isNonNullType(type) ? type.ofType : type);

  // A fragment's cost is linear in the multiplier: computed once at 1 and scaled, so spreading a
  // fragment many times (or fragments of fragments) costs linear, not exponential, time.
  const fragmentCosts = new Map<string, number>();
  const cost = (selectionSet: SelectionSetNode, parent: GraphQLCompositeType, multiplier: number, seen: Set<string>): number => {
    let total = 0;
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) {
        if (selection.name.value.startsWith('__') || !(isObjectType(parent) || isInterfaceType(parent))) continue;
        const field = parent.getFields()[selection.name.value];
        if (!field) continue;
        const named = getNamedType(field.type);
        const own = limits.fieldCosts[`${parent.name}.${field.name}`] ?? (isLeafType(named) ? limits.scalarCost : limits.objectCost);
        // A list costs its assumed length times the item: every item is resolved (and its fields too).
        const size = isList(field.type) ? listSize(selection.arguments) : 1;
        total += multiplier * size * own;
        if (selection.selectionSet) total += cost(selection.selectionSet, named as GraphQLCompositeType, multiplier * size, seen);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const condition = selection.typeCondition ? (schema.getType(selection.typeCondition.name.value) as GraphQLCompositeType) : parent;
        total += cost(selection.selectionSet, condition, multiplier, seen);
      } else {
        const name = selection.name.value;
        const fragment = fragments.get(name);
        if (!fragment || seen.has(name)) continue; // fragment cycles are a validation error; never loop
        let unit = fragmentCosts.get(name);
        if (unit === undefined) {
          const condition = schema.getType(fragment.typeCondition.name.value) as GraphQLCompositeType;
          unit = cost(fragment.selectionSet, condition, 1, new Set([...seen, name]));
          fragmentCosts.set(name, unit);
        }
        total += multiplier * unit;
      }
    }
    return total;
  };

  const root = schema.getRootType(operation.operation);
  return root ? cost(operation.selectionSet, root, 1, new Set()) : 0;
}

/**
 * Counts field selections as execution would see them, fragments expanded, in linear time (each
 * fragment's count is computed once): `rootOnly` counts the operation's root fields.
 */
function expandedFieldCount(
  operation: OperationDefinitionNode,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  rootOnly: boolean,
): number {
  const memo = new Map<string, number>();
  const count = (selectionSet: SelectionSetNode, seen: Set<string>): number =>
    selectionSet.selections.reduce((sum, selection) => {
      if (selection.kind === Kind.FIELD) return sum + 1 + (!rootOnly && selection.selectionSet ? count(selection.selectionSet, seen) : 0);
      if (selection.kind === Kind.INLINE_FRAGMENT) return sum + count(selection.selectionSet, seen);
      const name = selection.name.value;
      const fragment = fragments.get(name);
      if (!fragment || seen.has(name)) return sum;
      let fragmentCount = memo.get(name);
      if (fragmentCount === undefined) {
        fragmentCount = count(fragment.selectionSet, new Set([...seen, name]));
        memo.set(name, fragmentCount);
      }
      return sum + fragmentCount;
    }, 0);
  return count(operation.selectionSet, new Set());
}

/** Requests refused here: later plugins (the field guard) must not walk their operation at all. */
export const refusedOperations = new WeakSet<object>();

/**
 * Depth, aliases, directives, root fields and cost, checked after Apollo validated the operation and
 * before anything is planned: each refusal is a 400 with its own code, and no subgraph sees it.
 * Verdicts that do not depend on variables are cached per query hash.
 */
export function operationLimits(
  limits: OperationLimits,
  observeCost?: (operationType: string, cost: number) => void,
): ApolloServerPlugin<GatewayContext> {
  const verdicts = new LRUCache<string, GraphQLError | 'ok'>({ max: 2_000 });
  const armorRules = (report: (code: string) => (context: ValidationContext | null, error: GraphQLError) => void) => [
    maxDepthRule({ n: limits.maxDepth, propagateOnRejection: false, onReject: [report('OPERATION_TOO_DEEP')] }),
    maxAliasesRule({ n: limits.maxAliases, propagateOnRejection: false, onReject: [report('TOO_MANY_ALIASES')] }),
    maxDirectivesRule({ n: limits.maxDirectives, propagateOnRejection: false, onReject: [report('TOO_MANY_DIRECTIVES')] }),
  ];

  const structuralVerdict = (schema: GraphQLSchema, document: import('graphql').DocumentNode, operation: OperationDefinitionNode) => {
    let found: GraphQLError | null = null;
    const report = (code: string) => (_context: ValidationContext | null, error: GraphQLError) => {
      found ??= refusal(code, error.message.replace(/^Syntax Error: /, ''));
    };
    const fragments = fragmentMap(document);
    const fields = expandedFieldCount(operation, fragments, false);
    if (fields > limits.maxFields) {
      return refusal('OPERATION_TOO_LARGE', `The operation expands to ${fields} field selections; the limit is ${limits.maxFields}`);
    }
    validate(schema, document, armorRules(report));
    if (found) return found;
    const roots = expandedFieldCount(operation, fragments, true);
    if (roots > limits.maxRootFields) return refusal('TOO_MANY_ROOT_FIELDS', `The operation selects ${roots} root fields; the limit is ${limits.maxRootFields}`);
    return null;
  };

  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ schema, document, operation, queryHash, request, contextValue }) {
          if (!operation) return;
          const key = `${queryHash}:${request.operationName ?? ''}`;
          let verdict = verdicts.get(key);
          if (verdict === undefined) {
            verdict = structuralVerdict(schema, document, operation) ?? 'ok';
            verdicts.set(key, verdict);
          }
          // Cost depends on variables (list sizes), so it is computed per request. It is always
          // measured; it refuses only when a maximum is configured.
          if (verdict === 'ok') {
            const cost = operationCost(schema, operation, fragmentMap(document), request.variables ?? {}, limits);
            contextValue.graphql.estimatedCost = cost;
            observeCost?.(operation.operation, cost);
            if (limits.maxCost !== undefined && cost > limits.maxCost) {
              verdict = refusal('OPERATION_TOO_COMPLEX', `The operation's estimated cost is ${cost}; the limit is ${limits.maxCost}`);
            }
          }
          if (verdict !== 'ok') {
            refusedOperations.add(contextValue);
            throw verdict;
          }
        },
        async willSendResponse({ response, contextValue }) {
          if (!limits.costInResponse || response.body.kind !== 'single' || contextValue.graphql.estimatedCost === undefined) return;
          const result = response.body.singleResult;
          const cost = { estimated: contextValue.graphql.estimatedCost, ...(limits.maxCost === undefined ? {} : { max: limits.maxCost }) };
          result.extensions = { ...result.extensions, cost };
        },
      };
    },
  };
}

function fragmentMap(document: import('graphql').DocumentNode): Map<string, FragmentDefinitionNode> {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  return fragments;
}
