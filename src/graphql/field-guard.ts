import {
  GraphQLError,
  Kind,
  getNamedType,
  isAbstractType,
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

/**
 * One step of a response path: its key, whether it is non-null, and (for lists) whether items are;
 * `types` when the field was selected in a fragment narrower than an abstract parent (`... on Post`
 * under a union or interface): the step holds only for objects of those types.
 */
interface PathStep {
  key: string;
  nonNull: boolean;
  itemsNonNull: boolean;
  types: readonly string[] | null;
}

/**
 * Response key of the `__typename` the guard adds under an abstract field when a removal there holds
 * for some types only: read to tell items apart, then removed from the response.
 */
export const GUARD_TYPENAME = '_gatewayGuardTypename';
const TYPENAME_FIELD: FieldNode = {
  kind: Kind.FIELD,
  alias: { kind: Kind.NAME, value: GUARD_TYPENAME },
  name: { kind: Kind.NAME, value: '__typename' },
};

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
  /** Paths of the abstract fields the guard added `GUARD_TYPENAME` under (see `withoutGuardTypenames`). */
  typenames: PathStep[][];
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
  const removed = new Set<string>();
  const typenames: PathStep[][] = [];
  // The same field reached through several fragments is removed (and reported) once.
  const remove = (path: PathStep[], denial: Denial | null) => {
    const signature = JSON.stringify([path.map((step) => [step.key, step.types]), denial?.code ?? null]);
    if (removed.has(signature)) return;
    removed.add(signature);
    removals.push({ path, denial });
  };

  // `scope` is the type of the field owning the selection set, `parent` the type condition in effect.
  const filterSelections = (selectionSet: SelectionSetNode, parent: GraphQLCompositeType, scope: GraphQLCompositeType, path: PathStep[]): SelectionSetNode | null => {
    const kept: SelectionNode[] = [];
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) {
        const field = filterField(selection, parent, scope, path);
        if (field) kept.push(field);
        continue;
      }
      const fragment = selection.kind === Kind.FRAGMENT_SPREAD ? fragments.get(selection.name.value) : selection;
      if (!fragment) continue;
      const condition = fragment.typeCondition ? schema.getType(fragment.typeCondition.name.value) : parent;
      if (!condition || !('getFields' in condition || 'getTypes' in condition)) continue;
      const inner = filterSelections(fragment.selectionSet, condition as GraphQLCompositeType, scope, path);
      if (inner) {
        kept.push({ kind: Kind.INLINE_FRAGMENT, typeCondition: fragment.typeCondition, directives: selection.directives, selectionSet: inner });
      }
    }
    return kept.length > 0 ? { ...selectionSet, selections: kept } : null;
  };

  const filterField = (node: FieldNode, parent: GraphQLCompositeType, scope: GraphQLCompositeType, path: PathStep[]): FieldNode | null => {
    const name = node.name.value;
    if (name.startsWith('__') || !(isObjectType(parent) || isInterfaceType(parent))) return node;
    const definition = parent.getFields()[name];
    if (!definition) return node;
    // Under an abstract field, a fragment on a narrower type selects this field for its types only.
    const types = isAbstractType(scope) && parent !== scope ? (isObjectType(parent) ? [parent.name] : schema.getPossibleTypes(parent).map((t) => t.name)) : null;
    const step: PathStep[] = [...path, { key: node.alias?.value ?? name, ...nullability(definition.type), types }];
    const denial = check(parent, definition, node);
    if (denial) {
      remove(step, denial);
      return null;
    }
    if (!node.selectionSet) return node;
    const before = removals.length;
    const named = getNamedType(definition.type) as GraphQLCompositeType;
    let inner = filterSelections(node.selectionSet, named, named, step);
    if (!inner) {
      remove(step, null);
      return null;
    }
    // A removal below that holds for some types only needs each item's type in the response.
    if (removals.slice(before).some((r) => r.path[step.length]?.types) && !inner.selections.some(isGuardTypename)) {
      inner = { ...inner, selections: [...inner.selections, TYPENAME_FIELD] };
      typenames.push(step);
    }
    return inner === node.selectionSet ? node : { ...node, selectionSet: inner };
  };

  const selectionSet = filterSelections(operation.selectionSet, rootType, rootType, []);
  if (removals.length === 0) return null;
  const filtered: OperationDefinitionNode = { ...operation, selectionSet: selectionSet ?? { kind: Kind.SELECTION_SET, selections: [] } };
  return { document: { kind: Kind.DOCUMENT, definitions: [filtered] }, removals, typenames, empty: selectionSet === null };
}

function isGuardTypename(selection: SelectionNode): boolean {
  return selection.kind === Kind.FIELD && selection.alias?.value === GUARD_TYPENAME;
}

/** Whether a removal's step applies to this object: always, unless the step is for other types. */
function stepApplies(step: PathStep, record: Record<string, unknown>): boolean {
  if (!step.types) return true;
  const typename = record[GUARD_TYPENAME] ?? record.__typename;
  return typeof typename !== 'string' || step.types.includes(typename);
}

/** Removes the `__typename` the guard added (after `deniedFieldErrors` and `applyRemovals` read it). */
export function withoutGuardTypenames(data: Record<string, unknown> | null, paths: readonly (readonly PathStep[])[]): Record<string, unknown> | null {
  const strip = (value: unknown, path: readonly PathStep[], index: number): void => {
    if (value === null || typeof value !== 'object') return;
    if (Array.isArray(value)) return value.forEach((item) => strip(item, path, index));
    const record = value as Record<string, unknown>;
    if (index === path.length) {
      delete record[GUARD_TYPENAME];
      return;
    }
    strip(record[path[index]!.key], path, index + 1);
  };
  for (const path of paths) strip(data, path, 0);
  return data;
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
  if (!stepApplies(step, record)) return false;
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
      const record = value as Record<string, unknown>;
      // An item of another type than the fragment's holds no occurrence, nor a path to one.
      if (record !== null && typeof record === 'object' && !Array.isArray(record) && !stepApplies(path[index]!, record)) return;
      if (prefix.length > deepest.length) deepest = prefix;
      if (value === null || value === undefined) return;
      if (Array.isArray(value)) {
        value.forEach((item, i) => walk(item, index, [...prefix, i]));
        return;
      }
      if (typeof value !== 'object') return;
      const key = path[index]!.key;
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
