import { deepMerge as stockDeepMerge } from '@apollo/gateway/dist/utilities/deepMerge.js';
import { describe, expect, it } from 'vitest';
import { deepMerge, flattenAtPath } from '../../src/graphql/execution/merge.js';

/** Subgraph answers as the executor sees them: parsed JSON, so own keys like __proto__ are possible. */
const json = (text: string) => JSON.parse(text) as Record<string, unknown>;

const merges: [string, string, string][] = [
  ['new keys', '{"a":1}', '{"b":{"c":2},"d":[1,2]}'],
  ['nested objects merge', '{"a":{"x":1,"y":{"z":1}}}', '{"a":{"y":{"w":2},"v":3}}'],
  ['lists of the same length merge element-wise', '{"l":[{"a":1},null,3]}', '{"l":[{"b":2},{"c":1},4]}'],
  ['lists of other lengths are replaced', '{"l":[{"a":1}]}', '{"l":[{"b":2},{"c":3}]}'],
  ['null and undefined in the source', '{"a":{"x":1},"b":2}', '{"a":null,"b":null}'],
  ['an object replaces a scalar', '{"a":1}', '{"a":{"x":1}}'],
  ['names of Object.prototype properties', '{"toString":{"a":1}}', '{"constructor":{"a":1},"toString":{"b":2},"valueOf":3}'],
  ['a __proto__ key stays a plain key', '{"a":1}', '{"__proto__":{"polluted":true},"b":2}'],
];

describe('executor merge: same results as @apollo/gateway', () => {
  it.each(merges)('deepMerge: %s', (_name, target, source) => {
    // A value, or the kind of error (a subgraph's scalar where an object was merged throws in both).
    const outcome = (merge: () => unknown) => {
      try {
        return JSON.stringify(merge());
      } catch (error) {
        return (error as Error).constructor.name;
      }
    };
    const ours = outcome(() => deepMerge(json(target), json(source)));
    expect(ours).toBe(outcome(() => stockDeepMerge(json(target), json(source))));
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('flattenAtPath: what a recursive flatMap over the path gives, lists of lists included', () => {
    // The definition @apollo/gateway implements: past an `@`, flatMap over the list.
    const reference = (value: unknown, path: (string | number)[]): unknown => {
      if (path.length === 0 || value === undefined || value === null) return value;
      const [head, ...rest] = path;
      if (head === '@') return (value as unknown[]).flatMap((element) => reference(element, rest));
      if (Array.isArray(value)) throw new Error('a list where an object was expected');
      return reference(Object.hasOwn(value as object, head as string) ? (value as Record<string, unknown>)[head as string] : undefined, rest);
    };
    const data = json(
      '{"a":[{"b":[[1,[2]],null,{"c":[3]}]},null,{"b":null},{"b":[{"c":null},{"c":[[4],5]}]}],"d":{"e":[{"f":1},null]}}',
    );
    for (const path of [['a'], ['a', '@'], ['a', '@', 'b'], ['a', '@', 'b', '@'], ['a', '@', 'b', '@', 'c'], ['d', 'e', '@'], ['d', 'e', '@', 'f'], ['x', '@'], []]) {
      const outcome = (flatten: () => unknown) => {
        try {
          return flatten();
        } catch {
          return 'throws';
        }
      };
      expect(outcome(() => flattenAtPath(data, path))).toEqual(outcome(() => reference(data, path)));
    }
  });

  it('flattenAtPath: the objects under a path through lists, nulls kept for the caller to drop', () => {
    const data = json('{"users":[{"reviews":[{"p":{"id":1}},{"p":null}]},{"reviews":null},{"reviews":[{"p":{"id":2}}]}]}');
    expect(flattenAtPath(data, ['users', '@', 'reviews', '@', 'p'])).toEqual([{ id: 1 }, null, null, { id: 2 }]);
    expect(flattenAtPath(data, ['users', '@'])).toHaveLength(3);
    expect(flattenAtPath(data, ['missing', '@'])).toBeUndefined();
    expect(flattenAtPath(json('{"constructor":1}'), ['toString'])).toBeUndefined();
  });
});
