import { describe, expect, it } from 'vitest';
import { costDirectives } from '../../src/graphql/admission/cost-directives.js';

const types = `
  type Query { books(first: Int): [Book!]! @LISTSIZE(slicingArguments: ["first"], assumedSize: 7) @COST(weight: 3) }
  type Book @COST(weight: 2) { id: ID! }`;

function supergraph(link: string, cost: string, listSize: string): string {
  return `schema @link(url: "https://specs.apollo.dev/link/v1.0") ${link} { query: Query }\n${types.replaceAll('COST', cost).replaceAll('LISTSIZE', listSize)}`;
}

describe('@cost / @listSize names follow the supergraph link', () => {
  const expected = {
    fields: new Map([['Query.books', 3]]),
    types: new Map([['Book', 2]]),
    listSizes: new Map([['Query.books', { assumedSize: 7, slicingArguments: ['first'] }]]),
  };

  it('as composition writes it: @cost by the feature name, @listSize imported', () => {
    expect(costDirectives(supergraph('@link(url: "https://specs.apollo.dev/cost/v0.1", import: ["@listSize"])', 'cost', 'listSize'))).toEqual(expected);
  });

  it('namespaced with `as`, and renamed on import', () => {
    expect(costDirectives(supergraph('@link(url: "https://specs.apollo.dev/cost/v0.1", as: "dc")', 'dc', 'dc__listSize'))).toEqual(expected);
    const renamed = '@link(url: "https://specs.apollo.dev/cost/v0.1", import: [{ name: "@listSize", as: "@size" }])';
    expect(costDirectives(supergraph(renamed, 'cost', 'size'))).toEqual(expected);
  });

  it('reads nothing without the link: a look-alike directive is not a weight', () => {
    const weights = costDirectives(supergraph('', 'cost', 'listSize'));
    expect(weights.fields.size + weights.types.size + weights.listSizes.size).toBe(0);
  });
});
