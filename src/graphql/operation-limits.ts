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
  type DocumentNode,
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
import { GatewayError, gatewayGraphQLError, type ErrorCode } from '../errors.js';

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

/**
 * Size checks on the raw query text, run before Apollo parses it: a token bomb never reaches the
 * parser. Counts lexer tokens and stops one past the limit. Verdicts are remembered by text (bounded
 * by total characters), so a client repeating its query is not lexed again.
 */
export function queryTextCheck(limits: OperationLimits): (query: string) => GatewayError | null {
  const verdicts = new LRUCache<string, { error: GatewayError | null }>({
    maxSize: 4_000_000,
    sizeCalculation: (_value, query) => query.length + 1,
  });
  return (query) => {
    if (query.length > limits.maxCharacters) {
      return new GatewayError('QUERY_TOO_LARGE', `The query has ${query.length} characters; the limit is ${limits.maxCharacters}`);
    }
    let verdict = verdicts.get(query);
    if (!verdict) {
      verdict = { error: countTokens(query, limits.maxTokens) };
      verdicts.set(query, verdict);
    }
    return verdict.error;
  };
}

function countTokens(query: string, maxTokens: number): GatewayError | null {
  const lexer = new Lexer(new Source(query));
  let tokens = 0;
  try {
    for (let token = lexer.advance(); token.kind !== TokenKind.EOF; token = lexer.advance()) {
      if (++tokens > maxTokens) return new GatewayError('TOO_MANY_TOKENS', `The query has more than ${maxTokens} tokens`);
    }
  } catch {
    return null; // a syntax error: Apollo's parser reports it properly
  }
  return null;
}

/** Slicing arguments read when a field declares none with `@listSize`. */
const LIST_SIZE_ARGUMENTS = ['first', 'last', 'limit', 'pageSize'];

/** `@listSize` of one field (the IBM/Apollo demand-control directive). */
export interface ListSizeRule {
  readonly assumedSize?: number;
  readonly slicingArguments?: readonly string[];
  /** Child fields (a connection's `edges`, `nodes`) whose length the slicing arguments give. */
  readonly sizedFields?: readonly string[];
}

/** Weights that live with the schema (`@cost`, `@listSize`), keyed `Type.field` (and `Type` for type-level `@cost`). */
export interface CostWeights {
  readonly fields: ReadonlyMap<string, number>;
  readonly types: ReadonlyMap<string, number>;
  readonly listSizes: ReadonlyMap<string, ListSizeRule>;
}
export const NO_COST_WEIGHTS: CostWeights = { fields: new Map(), types: new Map(), listSizes: new Map() };

export interface CostEstimate {
  readonly cost: number;
  /** A list size came from a variable: the estimate holds for these variables only. */
  readonly usesVariables: boolean;
}

type ArgumentNodes = readonly { name: { value: string }; value: import('graphql').ValueNode }[] | undefined;

/**
 * Estimated cost of an operation, in the IBM/Apollo demand-control model: every object costs
 * `objectCost`, leaves `scalarCost`, unless `@cost` on the field or its type (or `fieldCosts` in the
 * configuration, which wins) says otherwise; a list multiplies what it contains by its size: the
 * slicing argument (`@listSize(slicingArguments:)`; without `@listSize`, `first`/`last`/`limit`/`pageSize`), else
 * `@listSize(assumedSize:)`, else `defaultListSize`. graphql-armor's cost rule has no per-field
 * weights or list multipliers, so this one is ours; depth, aliases and directives use graphql-armor's rules.
 */
export function operationCost(
  schema: GraphQLSchema,
  operation: OperationDefinitionNode,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  variables: Record<string, unknown>,
  limits: OperationLimits,
  weights: CostWeights = NO_COST_WEIGHTS,
): CostEstimate {
  // Variables the client left out take their declared defaults.
  const values: Record<string, unknown> = {};
  for (const definition of operation.variableDefinitions ?? []) {
    const fallback = definition.defaultValue;
    if (fallback?.kind === Kind.INT) values[definition.variable.name.value] = Number(fallback.value);
  }
  Object.assign(values, variables);
  let usesVariables = false;
  const listSize = (args: ArgumentNodes, rule: ListSizeRule | undefined): number => {
    // A field with `@listSize` is sliced only by the arguments it names (none if it names none).
    const slicing = rule ? (rule.slicingArguments ?? []) : LIST_SIZE_ARGUMENTS;
    let largest = 0;
    for (const argument of args ?? []) {
      if (!slicing.includes(argument.name.value)) continue;
      const value = argument.value;
      let size: unknown;
      if (value.kind === Kind.INT) size = Number(value.value);
      if (value.kind === Kind.VARIABLE) {
        usesVariables = true;
        size = values[value.name.value];
      }
      // Zero, negative or non-numeric sizes never make a list cheaper than the default.
      if (typeof size === 'number' && Number.isFinite(size) && size > largest) largest = size;
    }
    return largest > 0 ? largest : (rule?.assumedSize ?? limits.defaultListSize);
  };
  const isList = (type: GraphQLOutputType) => isListType(isNonNullType(type) ? type.ofType : type);

  /** The size a `@listSize(sizedFields:)` parent gives its named child lists. */
  interface Sized {
    readonly names: readonly string[];
    readonly size: number;
  }
  // A fragment's cost is linear in the multiplier: computed once at 1 and scaled, so spreading a
  // fragment many times (or fragments of fragments) costs linear, not exponential, time.
  const fragmentCosts = new Map<string, number>();
  const cost = (selectionSet: SelectionSetNode, parent: GraphQLCompositeType, multiplier: number, seen: Set<string>, sized: Sized | null): number => {
    let total = 0;
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) {
        if (selection.name.value.startsWith('__') || !(isObjectType(parent) || isInterfaceType(parent))) continue;
        const field = parent.getFields()[selection.name.value];
        if (!field) continue;
        const named = getNamedType(field.type);
        const key = `${parent.name}.${field.name}`;
        const own =
          limits.fieldCosts[key] ?? weights.fields.get(key) ?? weights.types.get(named.name) ?? (isLeafType(named) ? limits.scalarCost : limits.objectCost);
        const rule = weights.listSizes.get(key);
        // A list costs its assumed length times the item: every item is resolved (and its fields too).
        let size = 1;
        if (isList(field.type)) size = sized?.names.includes(field.name) ? sized.size : listSize(selection.arguments, rule);
        const childSized = rule?.sizedFields ? { names: rule.sizedFields, size: listSize(selection.arguments, rule) } : null;
        total += multiplier * size * own;
        if (selection.selectionSet) total += cost(selection.selectionSet, named as GraphQLCompositeType, multiplier * size, seen, childSized);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const condition = selection.typeCondition ? (schema.getType(selection.typeCondition.name.value) as GraphQLCompositeType) : parent;
        total += cost(selection.selectionSet, condition, multiplier, seen, sized);
      } else {
        const name = selection.name.value;
        const fragment = fragments.get(name);
        if (!fragment || seen.has(name)) continue; // fragment cycles are a validation error; never loop
        const memoKey = sized ? `${name}|${sized.names.join(',')}|${sized.size}` : name;
        let unit = fragmentCosts.get(memoKey);
        if (unit === undefined) {
          const condition = schema.getType(fragment.typeCondition.name.value) as GraphQLCompositeType;
          unit = cost(fragment.selectionSet, condition, 1, new Set([...seen, name]), sized);
          fragmentCosts.set(memoKey, unit);
        }
        total += multiplier * unit;
      }
    }
    return total;
  };

  const root = schema.getRootType(operation.operation);
  return { cost: root ? cost(operation.selectionSet, root, 1, new Set(), null) : 0, usesVariables };
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

/** Per-document verdict of the limits that do not depend on variables: a refusal or null. */
export function structuralVerdict(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  limits: OperationLimits,
): GraphQLError | null {
  let found: GraphQLError | null = null;
  const report = (code: ErrorCode) => (_context: ValidationContext | null, error: GraphQLError) => {
    found ??= gatewayGraphQLError(code, error.message.replace(/^Syntax Error: /, ''));
  };
  const fields = expandedFieldCount(operation, fragments, false);
  if (fields > limits.maxFields) {
    return gatewayGraphQLError('OPERATION_TOO_LARGE', `The operation expands to ${fields} field selections; the limit is ${limits.maxFields}`);
  }
  validate(schema, document, [
    maxDepthRule({ n: limits.maxDepth, propagateOnRejection: false, onReject: [report('OPERATION_TOO_DEEP')] }),
    maxAliasesRule({ n: limits.maxAliases, propagateOnRejection: false, onReject: [report('TOO_MANY_ALIASES')] }),
    maxDirectivesRule({ n: limits.maxDirectives, propagateOnRejection: false, onReject: [report('TOO_MANY_DIRECTIVES')] }),
  ]);
  if (found) return found;
  const roots = expandedFieldCount(operation, fragments, true);
  if (roots > limits.maxRootFields) {
    return gatewayGraphQLError('TOO_MANY_ROOT_FIELDS', `The operation selects ${roots} root fields; the limit is ${limits.maxRootFields}`);
  }
  return null;
}

export function costRefusal(cost: number, limits: OperationLimits): GraphQLError | null {
  if (limits.maxCost === undefined || cost <= limits.maxCost) return null;
  return gatewayGraphQLError('OPERATION_TOO_COMPLEX', `The operation's estimated cost is ${cost}; the limit is ${limits.maxCost}`);
}

export function fragmentMap(document: DocumentNode): Map<string, FragmentDefinitionNode> {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  return fragments;
}
