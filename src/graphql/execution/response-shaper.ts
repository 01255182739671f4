import {
  assert,
  ERRORS,
  isCompositeType,
  isCustomScalarType,
  isListType,
  isNonNullType,
  isObjectType,
  isSubtype,
  isValidLeafValue,
  typenameFieldName,
  Variable,
  type CompositeType,
  type Directive,
  type EnumType,
  type NamedType,
  type ScalarType,
  type Operation,
  type OperationElement,
  type OutputType,
  type Schema,
  type SelectionSet,
  type Type,
} from '@apollo/federation-internals';
import type { GraphQLError } from 'graphql';

/**
 * The last step of query-plan execution, compiled once per operation: from the data merged out of
 * the subgraph answers, keep what the operation asked for, in its order, with its aliases, checking
 * leaf values and bubbling nulls up to the nearest nullable parent. It follows @apollo/gateway's
 * `computeResponse` (resultShaping.ts) decision for decision, messages and paths included, so the
 * answer is the same; what it saves is redoing per object what depends only on the operation
 * (directive lookups, response names, type unwrapping, fragment type conditions). Hand-written
 * because no library shapes a federated result; `computeResponse` is internal and interprets the
 * operation on every request.
 */
export interface ResponseShaper {
  shape(input: Record<string, unknown> | null | undefined, variables: Record<string, unknown> | undefined): {
    data: Record<string, unknown> | null | undefined;
    errors: GraphQLError[];
  };
}

/** A `@skip`/`@include` argument: a literal, or the name of a variable. */
type Condition = boolean | string;

interface FieldNode {
  readonly kind: 0;
  readonly responseName: string;
  /** The name is also a property of Object.prototype: read it as an own property only. */
  readonly inherited: boolean;
  readonly isTypename: boolean;
  readonly skip: Condition | undefined;
  readonly include: Condition | undefined;
  readonly type: TypeShape;
  readonly selectionSet: SelectionNode[] | undefined;
}

/** A field's output type unwrapped once: what `updateOutputValue` would test on every value. */
type TypeShape =
  | { readonly kind: 'nonNull'; readonly ofType: OutputType; readonly of: TypeShape }
  | { readonly kind: 'list'; readonly type: OutputType; readonly of: TypeShape }
  | { readonly kind: 'composite'; readonly type: CompositeType }
  | { readonly kind: 'leaf'; readonly type: OutputType; readonly isValid: (value: unknown) => boolean };

interface FragmentNode {
  readonly kind: 1;
  readonly skip: Condition | undefined;
  readonly include: Condition | undefined;
  readonly typeCondition: CompositeType | undefined;
  /** typeConditionApplies, memoised by __typename (or by parent type when there is none). */
  readonly applies: Map<string, boolean>;
  readonly selectionSet: SelectionNode[];
}

type SelectionNode = FieldNode | FragmentNode;

/** Why an operation is left to the stock executor, or null when the shaper covers it. */
export function unsupportedShape(operation: Operation): string | null {
  const seen = new Set<SelectionSet>();
  const visit = (selectionSet: SelectionSet): string | null => {
    if (seen.has(selectionSet)) return null;
    seen.add(selectionSet);
    for (const selection of selectionSet.selections()) {
      if (selection.kind === 'FieldSelection') {
        if (selection.element.definition.isSchemaIntrospectionField()) return 'schema introspection';
        if (selection.element.responseName() === '__proto__') return 'a field answered as __proto__';
      }
      const reason = selection.selectionSet ? visit(selection.selectionSet) : null;
      if (reason) return reason;
    }
    return null;
  };
  return visit(operation.selectionSet);
}

export function compileResponseShaper(operation: Operation): ResponseShaper {
  const schema = operation.schema();
  const rootType = schema.schemaDefinition.rootType(operation.rootKind)!;
  const defaulted = operation.collectDefaultedVariableValues();
  const skipDirective = schema.skipDirective();
  const includeDirective = schema.includeDirective();
  const compiled = new Map<SelectionSet, SelectionNode[]>();
  const shapes = new Map<OutputType, TypeShape>();
  const typeShape = (type: OutputType): TypeShape => {
    let shape = shapes.get(type);
    if (shape) return shape;
    if (isNonNullType(type)) shape = { kind: 'nonNull', ofType: type.ofType, of: typeShape(type.ofType) };
    else if (isListType(type)) shape = { kind: 'list', type, of: typeShape(type.ofType) };
    else if (isCompositeType(type)) shape = { kind: 'composite', type };
    else shape = { kind: 'leaf', type, isValid: leafValidator(schema, type as ScalarType | EnumType) };
    shapes.set(type, shape);
    return shape;
  };

  const condition = (element: OperationElement, directive: typeof skipDirective): Condition | undefined => {
    const applied = element.appliedDirectivesOf(directive)[0] as Directive<never, { if: boolean | Variable }> | undefined;
    if (!applied) return undefined;
    const value = applied.arguments().if;
    return value instanceof Variable ? value.name : value;
  };

  const compile = (selectionSet: SelectionSet): SelectionNode[] => {
    const existing = compiled.get(selectionSet);
    if (existing) return existing;
    const nodes: SelectionNode[] = [];
    compiled.set(selectionSet, nodes);
    for (const selection of selectionSet.selections()) {
      const element = selection.element;
      const skip = condition(element, skipDirective);
      const include = condition(element, includeDirective);
      if (selection.kind === 'FieldSelection') {
        const field = selection.element;
        const responseName = field.responseName();
        nodes.push({
          kind: 0,
          responseName,
          inherited: responseName in Object.prototype,
          isTypename: field.name === typenameFieldName,
          skip,
          include,
          type: typeShape(field.definition.type!),
          selectionSet: selection.selectionSet ? compile(selection.selectionSet) : undefined,
        });
      } else {
        nodes.push({
          kind: 1,
          skip,
          include,
          typeCondition: selection.element.typeCondition,
          applies: new Map(),
          selectionSet: compile(selection.selectionSet),
        });
      }
    }
    return nodes;
  };
  const root = compile(operation.selectionSet);
  const types = new Map<string, NamedType | undefined>();
  const typeNamed = (name: string): NamedType | undefined => {
    if (types.has(name)) return types.get(name);
    const type = schema.type(name);
    types.set(name, type);
    return type;
  };

  return {
    shape(input, variables) {
      if (!input) return { data: input, errors: [] };
      const run = new ShapeRun(typeNamed, { __proto__: null, ...defaulted, ...variables });
      const data: Record<string, unknown> = {};
      const result = run.applySelectionSet(input, root, data, rootType);
      return { data: result === NULL_BUBBLE_UP ? null : data, errors: run.errors };
    },
  };
}

const OK = 0;
const NULL_BUBBLE_UP = 1;

type Path = (string | number)[];

/** One shaping of one response: the variables, the errors found, the current path. */
class ShapeRun {
  readonly errors: GraphQLError[] = [];
  private readonly path: Path = [];
  /**
   * What stock `updateOutputValue` returns next to the value, kept here instead of in an object per
   * value: the value is a null that must bubble up (`isInvalid`), errors were already recorded for it.
   */
  private isInvalid = false;
  private hasErrors = false;

  private result(updated: unknown, isInvalid: boolean, hasErrors: boolean): unknown {
    this.isInvalid = isInvalid;
    this.hasErrors = hasErrors;
    return updated;
  }

  constructor(
    private readonly typeNamed: (name: string) => NamedType | undefined,
    private readonly variables: Record<string, unknown>,
  ) {}

  private shouldSkip(node: SelectionNode): boolean {
    return (node.skip !== undefined && this.ifValue(node.skip)) || (node.include !== undefined && !this.ifValue(node.include));
  }

  private ifValue(condition: Condition): boolean {
    if (typeof condition === 'boolean') return condition;
    const value = this.variables[condition];
    assert(value !== undefined && typeof value === 'boolean', () => `Unexpected value ${String(value)} for variable $${condition}`);
    return value;
  }

  private typeConditionApplies(node: FragmentNode, typename: string | undefined, parentType: CompositeType): boolean {
    const typeCondition = node.typeCondition;
    if (!typeCondition) return true;
    const key = typename ? typename : `\0${parentType.name}`;
    let applies = node.applies.get(key);
    if (applies === undefined) {
      if (typename) {
        const type = this.typeNamed(typename);
        applies = !!type && isSubtype(typeCondition, type);
      } else {
        applies = isSubtype(typeCondition, parentType);
      }
      node.applies.set(key, applies);
    }
    return applies;
  }

  applySelectionSet(input: Record<string, unknown>, selections: SelectionNode[], output: Record<string, unknown>, parentType: CompositeType): number {
    // A subgraph sending a list where an object belongs: read only its own properties, as the stock gateway does.
    const ownOnly = Array.isArray(input);
    for (let i = 0; i < selections.length; i++) {
      const node = selections[i]!;
      if ((node.skip !== undefined || node.include !== undefined) && this.shouldSkip(node)) continue;

      if (node.kind === 0) {
        const responseName = node.responseName;
        const outputValue = node.inherited ? ownValue(output, responseName) : output[responseName];
        let inputValue = (node.inherited || ownOnly ? ownValue(input, responseName) : input[responseName]) ?? null;

        if (node.isTypename) {
          if (outputValue === undefined) {
            if (inputValue === null && responseName !== typenameFieldName) inputValue = input[typenameFieldName] ?? null;
            const type = inputValue !== null && typeof inputValue === 'string' ? (this.typeNamed(inputValue) ?? parentType) : parentType;
            if (!isObjectType(type)) return NULL_BUBBLE_UP;
            output[responseName] = type.name;
          }
          continue;
        }

        // A leaf seen for the first time and valid (or null where null is allowed): the value itself,
        // which is what updateOutputValue would return, without its path bookkeeping.
        if (outputValue === undefined) {
          const shape = node.type;
          const leaf = shape.kind === 'nonNull' ? shape.of : shape;
          if (leaf.kind === 'leaf' && (inputValue === null ? leaf === shape : leaf.isValid(inputValue))) {
            output[responseName] = inputValue;
            continue;
          }
        }

        this.path.push(responseName);
        output[responseName] = this.updateOutputValue(outputValue, node.type, inputValue, node.selectionSet, parentType);
        this.path.pop();
        if (this.isInvalid) return NULL_BUBBLE_UP;
      } else {
        const typename = input[typenameFieldName];
        assert(!typename || typeof typename === 'string', () => `Got unexpected value for __typename: ${String(typename)}`);
        if (this.typeConditionApplies(node, (typename as string) || undefined, parentType)) {
          const result = this.applySelectionSet(input, node.selectionSet, output, node.typeCondition ?? parentType);
          if (result === NULL_BUBBLE_UP) return NULL_BUBBLE_UP;
        }
      }
    }
    return OK;
  }

  private updateOutputValue(
    outputValue: unknown,
    shape: TypeShape,
    inputValue: unknown,
    selectionSet: SelectionNode[] | undefined,
    parentType: CompositeType,
  ): unknown {
    if (outputValue === null || (outputValue !== undefined && !selectionSet)) {
      return this.result(outputValue, false, false);
    }

    if (shape.kind === 'nonNull') {
      const updated = this.updateOutputValue(outputValue, shape.of, inputValue, selectionSet, parentType);
      if (updated === null) {
        if (!this.hasErrors) {
          this.errors.push(
            ERRORS.INVALID_GRAPHQL.err(`Cannot return null for non-nullable ${this.lastElementDescription(shape.ofType, parentType)}.`, {
              path: Array.from(this.path),
            }),
          );
        }
        return this.result(null, true, true);
      }
      return this.result(updated, false, false);
    }

    if (inputValue === null) return this.result(null, false, false);

    if (shape.kind === 'list') {
      const type = shape.type;
      assert(Array.isArray(inputValue), () => `Invalid non-list value ${String(inputValue)} returned by subgraph for list type ${type}`);
      assert(outputValue === undefined || Array.isArray(outputValue), () => `Invalid non-list value ${String(outputValue)} returned by subgraph for list type ${type}`);
      const previous = outputValue as unknown[] | undefined;
      const length = previous === undefined ? inputValue.length : previous.length;
      assert(inputValue.length === length, () => `[${String(inputValue)}].length (${inputValue.length}) !== [${String(previous)}].length (${length})`);
      const updated: unknown[] = []; // filled in order: a packed list, quicker to serialise than a holey one
      let shouldNullify = false;
      let hasErrors = false;
      for (let i = 0; i < length; i++) {
        this.path.push(i);
        updated.push(this.updateOutputValue(previous?.[i], shape.of, inputValue[i], selectionSet, parentType));
        this.path.pop();
        shouldNullify ||= this.isInvalid;
        hasErrors ||= this.hasErrors;
      }
      return this.result(shouldNullify ? null : updated, false, hasErrors);
    }

    if (shape.kind === 'composite') {
      const type = shape.type;
      assert(selectionSet, () => `Invalid empty selection set for composite type ${type}`);
      assert(typeof inputValue === 'object', () => `Invalid non-object value ${String(inputValue)} returned by subgraph for composite type ${type}`);
      assert(outputValue === undefined || typeof outputValue === 'object', () => `Invalid non-object value ${String(inputValue)} returned by subgraph for composite type ${type}`);
      const input = inputValue as Record<string, unknown>;
      const inputTypename = input[typenameFieldName];
      assert(inputTypename === undefined || typeof inputTypename === 'string', () => `Invalid non-string value ${String(inputTypename)} for __typename at ${this.path.join(',')}`);
      let objectType: CompositeType = type;
      if (inputTypename) {
        const typenameType = this.typeNamed(inputTypename);
        if (!typenameType || !isCompositeType(typenameType)) {
          // Like the stock gateway, never name the (possibly @inaccessible) type the subgraph sent.
          this.errors.push(
            ERRORS.INVALID_GRAPHQL.err(`Invalid __typename found for object at ${this.lastElementDescription(type, parentType)}.`, {
              path: Array.from(this.path),
            }),
          );
          return this.result(null, false, true);
        }
        objectType = typenameType;
      }
      const outputObject = (outputValue === undefined ? {} : outputValue) as Record<string, unknown>;
      const bubbled = this.applySelectionSet(input, selectionSet, outputObject, objectType) === NULL_BUBBLE_UP;
      return this.result(bubbled ? null : outputObject, false, bubbled);
    }

    const type = shape.type;
    assert(outputValue === undefined, () => `Excepted output to be undefined but got ${type} for type ${type}`);
    const isValidValue = shape.isValid(inputValue);
    if (!isValidValue) {
      this.errors.push(
        ERRORS.INVALID_GRAPHQL.err(`Invalid value found for ${this.lastElementDescription(type, parentType)}.`, {
          path: Array.from(this.path),
        }),
      );
    }
    return this.result(isValidValue ? inputValue : null, false, !isValidValue);
  }

  private lastElementDescription(currentType: Type, parentType: CompositeType): string {
    const element = this.path[this.path.length - 1];
    assert(element !== undefined, 'Should not have been called on an empty path');
    return typeof element === 'string'
      ? `field ${parentType}.${element}`
      : `array element of type ${currentType} at index ${element}`;
  }
}

/**
 * `isValidLeafValue` of federation-internals for one type, with a shortcut for the values that are
 * valid at first sight (a string for String, a boolean for Boolean, a finite number for Float);
 * anything else still gets the full check.
 */
function leafValidator(schema: Schema, type: ScalarType | EnumType): (value: unknown) => boolean {
  if (isCustomScalarType(type)) return () => true;
  const full = (value: unknown) => isValidLeafValue(schema, value, type);
  if (type === schema.stringType()) return (value) => typeof value === 'string' || full(value);
  if (type === schema.booleanType()) return (value) => typeof value === 'boolean' || full(value);
  if (type === schema.floatType()) return (value) => (typeof value === 'number' && isFinite(value)) || full(value);
  return full;
}

function ownValue(object: Record<string, unknown>, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(object, key) ? object[key] : undefined;
}
