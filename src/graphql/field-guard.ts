import {
  GraphQLError,
  Kind,
  getNamedType,
  isInterfaceType,
  isListType,
  isNonNullType,
  isObjectType,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLCompositeType,
  type GraphQLField,
  type GraphQLOutputType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionNode,
  type SelectionSetNode,
} from 'graphql';
import { gatewayGraphQLError, type ErrorCode } from '../errors.js';

/** Why one field of an operation is withheld: reported as a GraphQL error at its path. */
export interface Denial {
  readonly code: ErrorCode;
  readonly message: string;
}

/** Decides for one field occurrence; null lets it through. */
export type FieldCheck = (parent: GraphQLCompositeType, field: GraphQLField<unknown, unknown>, node: FieldNode) => Denial | null;

/** One step of a response path: its key, whether it is non-null, and (for lists) whether items are. */
interface PathStep {
  key: string;
  nonNull: boolean;
  itemsNonNull: boolean;
}

/** `[T!]!` → non-null, items non-null; `[T]` → neither; `T!` → non-null. */
function nullability(type: GraphQLOutputType): { nonNull: boolean; itemsNonNull: boolean } {
  const nonNull = isNonNullType(type);
  const inner = nonNull ? type.ofType : type;
  return { nonNull, itemsNonNull: isListType(inner) && isNonNullType(inner.ofType) };
}

export interface Removal {
  path: PathStep[];
  /** Null for a parent dropped only because all its selections were removed. */
  denial: Denial | null;
}

export interface FilterResult {
  document: DocumentNode;
  removals: Removal[];
  /** Every root field was removed: nothing is left to execute. */
  empty: boolean;
}

/**
 * Walks an operation (fragments inlined, so what one caller may see never changes a shared
 * fragment) and removes the fields `check` denies; null when nothing needs removing.
 */
export function filterOperation(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  check: FieldCheck,
): FilterResult | null {
  const rootType = schema.getRootType(operation.operation);
  if (!rootType) return null;
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  const removals: Removal[] = [];

  const filterSelections = (selectionSet: SelectionSetNode, parent: GraphQLCompositeType, path: PathStep[]): SelectionSetNode | null => {
    const kept: SelectionNode[] = [];
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) {
        const field = filterField(selection, parent, path);
        if (field) kept.push(field);
        continue;
      }
      const fragment = selection.kind === Kind.FRAGMENT_SPREAD ? fragments.get(selection.name.value) : selection;
      if (!fragment) continue;
      const condition = fragment.typeCondition ? schema.getType(fragment.typeCondition.name.value) : parent;
      if (!condition || !('getFields' in condition || 'getTypes' in condition)) continue;
      const inner = filterSelections(fragment.selectionSet, condition as GraphQLCompositeType, path);
      if (inner) {
        kept.push({ kind: Kind.INLINE_FRAGMENT, typeCondition: fragment.typeCondition, directives: selection.directives, selectionSet: inner });
      }
    }
    return kept.length > 0 ? { ...selectionSet, selections: kept } : null;
  };

  const filterField = (node: FieldNode, parent: GraphQLCompositeType, path: PathStep[]): FieldNode | null => {
    const name = node.name.value;
    if (name.startsWith('__') || !(isObjectType(parent) || isInterfaceType(parent))) return node;
    const definition = parent.getFields()[name];
    if (!definition) return node;
    const step: PathStep[] = [...path, { key: node.alias?.value ?? name, ...nullability(definition.type) }];
    const denial = check(parent, definition, node);
    if (denial) {
      removals.push({ path: step, denial });
      return null;
    }
    if (!node.selectionSet) return node;
    const inner = filterSelections(node.selectionSet, getNamedType(definition.type) as GraphQLCompositeType, step);
    if (!inner) {
      removals.push({ path: step, denial: null });
      return null;
    }
    return inner === node.selectionSet ? node : { ...node, selectionSet: inner };
  };

  const selectionSet = filterSelections(operation.selectionSet, rootType, []);
  if (removals.length === 0) return null;
  const filtered: OperationDefinitionNode = { ...operation, selectionSet: selectionSet ?? { kind: Kind.SELECTION_SET, selections: [] } };
  return { document: { kind: Kind.DOCUMENT, definitions: [filtered] }, removals, empty: selectionSet === null };
}

/**
 * Writes `null` where removed fields would have been, and bubbles it like GraphQL execution does:
 * a null in a non-null position nulls the nearest nullable ancestor — an object field, or a list
 * item when the list's items are nullable.
 */
export function applyRemovals(data: Record<string, unknown> | null, removals: readonly Removal[]): Record<string, unknown> | null {
  if (!data) return data;
  let root: Record<string, unknown> | null = data;
  for (const { path } of removals) {
    // `nullAt` returns true when the null bubbled up past the root: the whole data becomes null.
    if (root && nullAt(root, path, 0)) root = null;
  }
  return root;
}

/** Nulls `path[index..]` inside `object`; returns true when the null must bubble past `object`. */
function nullAt(object: unknown, path: PathStep[], index: number): boolean {
  if (object === null || typeof object !== 'object') return false;
  const record = object as Record<string, unknown>;
  const step = path[index]!;
  if (index === path.length - 1) {
    record[step.key] = null;
    return step.nonNull;
  }
  const value = record[step.key];
  if (value === null || value === undefined) return false;
  if (!valueBubbled(value, step, path, index + 1)) return false;
  record[step.key] = null;
  return step.nonNull;
}

/** Whether nulling inside `value` (the field at `step`) makes that field itself null. */
function valueBubbled(value: unknown, step: PathStep, path: PathStep[], index: number): boolean {
  if (!Array.isArray(value)) return nullAt(value, path, index);
  let bubbled = false;
  value.forEach((item, i) => {
    const itemBubbled = Array.isArray(item) ? valueBubbled(item, step, path, index) : nullAt(item, path, index);
    if (!itemBubbled) return;
    if (step.itemsNonNull) bubbled = true;
    else value[i] = null;
  });
  return bubbled;
}

/**
 * One error per denied field occurrence in the result, at its response path with list indices
 * (`["users", 0, "email"]`), read before nulls bubble. Where the data holds no occurrence (an empty
 * list, a null parent), one error names the deepest path that exists, so the denial is never silent.
 */
export function deniedFieldErrors(data: Record<string, unknown> | null, removals: readonly Removal[]): GraphQLError[] {
  const errors: GraphQLError[] = [];
  for (const { path, denial } of removals) {
    if (!denial) continue;
    const found: (string | number)[][] = [];
    let deepest: (string | number)[] = [];
    const walk = (value: unknown, index: number, prefix: (string | number)[]): void => {
      if (index === path.length) {
        found.push(prefix);
        return;
      }
      if (prefix.length > deepest.length) deepest = prefix;
      if (value === null || value === undefined) return;
      if (Array.isArray(value)) {
        value.forEach((item, i) => walk(item, index, [...prefix, i]));
        return;
      }
      if (typeof value !== 'object') return;
      const key = path[index]!.key;
      const record = value as Record<string, unknown>;
      // The denied field itself was never fetched: its key is absent, its path still exists.
      if (index === path.length - 1) walk(null, index + 1, [...prefix, key]);
      else if (key in record) walk(record[key], index + 1, [...prefix, key]);
    };
    walk(data, 0, []);
    const paths = found.length > 0 ? found : [deepest.length > 0 ? deepest : path.map((step) => step.key)];
    for (const at of paths) errors.push(gatewayGraphQLError(denial.code, denial.message, at));
  }
  return errors;
}
