import type { QueryPlanSelectionNode } from '@apollo/query-planner';
import { isAbstractType, isInterfaceType, isObjectType, type GraphQLSchema } from 'graphql';
import { deepMerge, type ResultMap } from './merge.js';

/**
 * Extracts an entity's representation (the `requires` selection of a fetch: __typename, key and
 * required fields) from the merged result, compiled once per fetch node. Same rules as
 * @apollo/gateway's `executeSelectionSet`: a missing field makes the whole representation null (the
 * entity is skipped), a type condition applies when the object's __typename is the type or one of
 * its possible types, in the supergraph schema (requires may name @inaccessible elements).
 */
export type Extractor = (source: unknown) => ResultMap | null;

interface FieldStep {
  readonly kind: 'field';
  readonly responseName: string;
  readonly sub: Extractor | undefined;
}

interface FragmentStep {
  readonly kind: 'fragment';
  readonly typeCondition: string | undefined;
  readonly sub: Extractor;
}

export function compileExtractor(schema: GraphQLSchema, selections: readonly QueryPlanSelectionNode[]): Extractor {
  const steps: (FieldStep | FragmentStep)[] = selections.map((selection) =>
    selection.kind === 'Field'
      ? {
          kind: 'field',
          responseName: selection.alias ?? selection.name,
          sub: selection.selections ? compileExtractor(schema, selection.selections) : undefined,
        }
      : {
          kind: 'fragment',
          typeCondition: selection.typeCondition,
          sub: compileExtractor(schema, selection.selections),
        },
  );
  const isOfType = objectOfTypeTester(schema);
  // Plain objects are cheaper to build and serialise; a prototype-less one only when a key needs it.
  const nullPrototype = steps.some((step) => step.kind === 'field' && step.responseName === '__proto__');

  // The usual `requires` is one type-conditioned fragment (`... on Product { __typename upc }`): the
  // fragment's own result is what merging it into an empty object would give.
  const only = steps.length === 1 ? steps[0]! : undefined;
  if (only?.kind === 'fragment' && only.typeCondition) {
    const typeCondition = only.typeCondition;
    return (source) => {
      if (source === null) return null;
      if (!source || !isOfType(source as ResultMap, typeCondition)) return nullPrototype ? (Object.create(null) as ResultMap) : {};
      return only.sub(source) ?? {};
    };
  }

  const extract: Extractor = (source) => {
    if (source === null) return null;
    const object = source as ResultMap;
    const result: ResultMap = nullPrototype ? (Object.create(null) as ResultMap) : {};
    for (const step of steps) {
      if (step.kind === 'field') {
        const name = step.responseName;
        if (!Object.prototype.hasOwnProperty.call(object, name) || object[name] === undefined) return null;
        const value = object[name];
        const sub = step.sub;
        if (Array.isArray(value)) result[name] = value.map((item: unknown) => (sub ? sub(item) : item));
        else result[name] = sub ? sub(value) : value;
      } else {
        if (!step.typeCondition || !source) continue;
        if (isOfType(object, step.typeCondition)) deepMerge(result, step.sub(object));
      }
    }
    return result;
  };
  return extract;
}

/** @apollo/gateway's `isObjectOfType` (without a default for objects lacking __typename), memoised per type pair. */
function objectOfTypeTester(schema: GraphQLSchema): (object: ResultMap, typeCondition: string) => boolean {
  const memo = new Map<string, boolean>();
  return (object, typeCondition) => {
    const typename = object['__typename'];
    if (!typename) return false;
    if (typeCondition === typename) return true;
    const key = `${String(typename)}\0${typeCondition}`;
    let applies = memo.get(key);
    if (applies === undefined) {
      const type = schema.getType(String(typename));
      const conditionType = schema.getType(typeCondition);
      applies =
        !!type &&
        !!conditionType &&
        isAbstractType(conditionType) &&
        (isObjectType(type) || isInterfaceType(type)) &&
        schema.isSubType(conditionType, type);
      memo.set(key, applies);
    }
    return applies;
  };
}
