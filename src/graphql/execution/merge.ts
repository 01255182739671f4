import { assert } from '@apollo/federation-internals';
import type { ResponsePath } from '@apollo/query-planner';

/**
 * Merging subgraph answers into the result under construction and finding the objects a plan node
 * works on. Same semantics as @apollo/gateway's `deepMerge` and `flattenResultsAtPath` (internal,
 * not exported), written as loops over own keys instead of `Object.keys`/`flatMap`/rest-spread
 * copies, which allocated per object and per path step.
 */
export type ResultMap = Record<string, unknown>;

const hasOwn = (object: object, key: string) => Object.prototype.hasOwnProperty.call(object, key);

function isObject(value: unknown): value is ResultMap {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A key the target does not own but inherits (e.g. `constructor`) becomes an own property first. */
function defineOwn(target: ResultMap, key: string): void {
  if (!hasOwn(target, key) && key in target) {
    Object.defineProperty(target, key, { configurable: true, enumerable: true, value: undefined, writable: true });
  }
}

export function deepMerge(target: ResultMap, source: unknown): ResultMap {
  if (source === undefined || source === null) return target;
  const from = source as ResultMap;
  for (const key in from) {
    if (!hasOwn(from, key)) continue;
    const value = from[key];
    if (value === undefined) continue;
    let existing = target[key];
    // Only a defined value can be inherited (`constructor`, `__proto__`…): make the key own first.
    if (existing !== undefined && !hasOwn(target, key)) {
      defineOwn(target, key);
      existing = undefined;
    }
    if (existing && isObject(value)) {
      deepMerge(existing as ResultMap, value);
    } else if (Array.isArray(value) && Array.isArray(existing) && value.length === existing.length) {
      for (let i = 0; i < value.length; i++) {
        const into = existing[i];
        const item = value[i];
        if (isObject(into) && isObject(item)) deepMerge(into, item);
        else existing[i] = item;
      }
    } else {
      target[key] = value;
    }
  }
  return target;
}

/**
 * The values at `path` below `value`: one value, or (past an `@`) the flattened list of them, nulls
 * included. `@apollo/gateway`'s `flattenResultsAtPath` (recursive `flatMap`), with one output list
 * instead of a list per level: `collect` pushes exactly what that `flatMap` would have pushed.
 */
export function flattenAtPath(value: unknown, path: ResponsePath): unknown {
  let current = value;
  for (let i = 0; i < path.length; i++) {
    if (current === undefined || current === null) return current;
    const step = path[i];
    if (step === '@') {
      const out: unknown[] = [];
      eachElement(current, (element) => collect(element, path, i + 1, out));
      return out;
    }
    current = member(current, step);
  }
  return current;
}

/** What `flatMap` pushes for one element: the value found at the rest of the path, one list level spread. */
function collect(value: unknown, path: ResponsePath, from: number, out: unknown[]): void {
  let current = value;
  for (let i = from; i < path.length; i++) {
    if (current === undefined || current === null) {
      out.push(current);
      return;
    }
    const step = path[i];
    if (step === '@') {
      eachElement(current, (element) => collect(element, path, i + 1, out));
      return;
    }
    current = member(current, step);
  }
  if (Array.isArray(current)) for (const item of current) out.push(item);
  else out.push(current);
}

function eachElement(value: unknown, visit: (element: unknown) => void): void {
  // The stock gateway calls value.flatMap here; fail the same way on a non-list.
  if (!Array.isArray(value)) throw new TypeError('value.flatMap is not a function');
  for (const element of value) visit(element);
}

function member(value: unknown, step: string | number | undefined): unknown {
  assert(typeof step === 'string', () => `Unexpected ${typeof step} found in path`);
  assert(!Array.isArray(value), () => `Unexpected array in result for path element ${step}`);
  const object = value as ResultMap;
  return hasOwn(object, step) ? object[step] : undefined;
}
