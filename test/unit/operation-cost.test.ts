import { buildSchema, parse, type OperationDefinitionNode } from 'graphql';
import { describe, expect, it } from 'vitest';
import { costDirectives } from '../../src/graphql/admission/cost-directives.js';
import { OPERATION_LIMIT_DEFAULTS, fragmentMap, operationCost } from '../../src/graphql/operation-limits.js';

const supergraph = `
  schema @link(url: "https://specs.apollo.dev/link/v1.0") @link(url: "https://specs.apollo.dev/cost/v0.1", import: ["@listSize"]) { query: Query }
  type Query {
    "@listSize without slicing arguments: its \`first\` does not size the list."
    shelf(first: Int): [Book!]! @listSize(assumedSize: 3)
    "No @listSize: the conventional slicing arguments apply."
    books(first: Int): [Book!]!
  }
  type Book { id: ID! }`;

function estimate(query: string): number {
  const schema = buildSchema(supergraph, { assumeValid: true });
  const document = parse(query);
  const operation = document.definitions[0] as OperationDefinitionNode;
  return operationCost(schema, operation, fragmentMap(document), {}, OPERATION_LIMIT_DEFAULTS, costDirectives(supergraph)).cost;
}

describe('list sizes in the cost estimate', () => {
  it('a field with @listSize but no slicingArguments keeps its assumed size whatever `first` says', () => {
    expect(estimate('{ shelf(first: 100) { id } }')).toBe(3);
  });

  it('a field without @listSize is sized by first/last/limit/pageSize', () => {
    expect(estimate('{ books(first: 100) { id } }')).toBe(100);
    expect(estimate('{ books { id } }')).toBe(OPERATION_LIMIT_DEFAULTS.defaultListSize);
  });
});
