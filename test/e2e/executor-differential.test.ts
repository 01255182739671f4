import { ApolloGateway } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FastApolloGateway } from '../../src/graphql/execution/fast-gateway.js';
import { HEAVY_QUERY, startShop, type RunningShop } from '../helpers/shop-subgraphs.js';

/**
 * Our query-plan executor against the stock one: the same operations, through two gateways on the
 * same supergraph and the same real subgraphs, must give byte-identical responses (data, errors with
 * their paths and codes, extensions). The schema is not the demo's: the benchmark's four subgraphs
 * plus an interface, a union, @inaccessible, @requires, @provides, a mutation and failing fields.
 */
interface Case {
  name: string;
  query: string;
  variables?: Record<string, unknown>;
  operationName?: string;
}

const corpus: Case[] = [
  { name: 'the heavy benchmark query', query: HEAVY_QUERY },
  {
    name: 'entity errors with paths, nulls from a failing @requires, a failing account lookup',
    query: '{ topProducts(first: 6) { upc name inStock shippingEstimate reviews { id body rating author { id username name birthday } } } }',
  },
  { name: 'aliases and __typename', query: '{ a: users { key: id __typename n: name } me { t: __typename ... on User { username } } t: __typename }' },
  {
    name: 'a non-null field failing in a list of an interface: null propagation to data',
    query: '{ media { __typename id title ... on Book { pages writer { id name username } } ... on Movie { minutes } } }',
  },
  {
    name: 'fragments on a union and an interface',
    query: 'fragment M on Media { id ... on Book { title format writer { name } } ... on Movie { released rating } } { search(term: "x") { __typename ...M ... on Product { upc name inStock shippingEstimate } } }',
  },
  { name: 'an error on a root field next to data', query: '{ search(term: "boom") { __typename } users { id } }' },
  { name: 'a missing entity', query: '{ user(id: "missing") { id name reviews { id } } }' },
  { name: 'a non-null field failing in the subgraph', query: '{ review(id: "r-bad") { id body rating } ok: review(id: "r1") { id rating author { name } } }' },
  {
    name: 'variables, @include and @skip',
    query: 'query Q($with: Boolean!, $id: ID!) { user(id: $id) { id name reviews @include(if: $with) { id body } } me @skip(if: $with) { id } }',
    variables: { with: true, id: 'u2' },
  },
  {
    name: 'variables, @include and @skip, other way',
    query: 'query Q($with: Boolean!, $id: ID!) { user(id: $id) { id name reviews @include(if: $with) { id body } } me @skip(if: $with) { id } }',
    variables: { with: false, id: 'u3' },
  },
  {
    name: 'a condition on a fetch, with a default value',
    query: 'query C($skip: Boolean = true) { users { id reviews @skip(if: $skip) { id product { name } } } }',
  },
  {
    name: 'a condition on a fetch, given',
    query: 'query C($skip: Boolean = true) { users { id reviews @skip(if: $skip) { id product { name } } } }',
    variables: { skip: false },
  },
  { name: 'the same response name selected twice', query: '{ users { id reviews { id } reviews { body product { upc } } } }' },
  {
    name: 'inline fragments without and with type conditions',
    query: '{ users { id ... { name } ... on User { reviews { product { ... on Product { upc shippingEstimate } } } } } }',
  },
  { name: 'a mutation', query: 'mutation { addReview(upc: "p1", body: "hi") { id body product { name inStock shippingEstimate } author { name } } }' },
  { name: 'an @inaccessible field is not there', query: '{ topProducts { upc internalCode } }' },
  { name: 'introspection next to data (stock fallback)', query: '{ __schema { queryType { name } } __type(name: "User") { name } users { id } }' },
  {
    name: 'one operation of several',
    query: 'query A { users { id } } query B { topProducts(first: 2) { name reviews { body } } }',
    operationName: 'B',
  },
  { name: 'an unknown operation name', query: 'query A { users { id } }', operationName: 'Nope' },
  { name: 'a bad variable', query: 'query Q($id: ID!) { user(id: $id) { id } }', variables: { id: { nested: true } } },
  { name: 'a field name that is also an Object.prototype property', query: '{ users { constructor: name toString: id } }' },
];

async function gatewayServer(gateway: ApolloGateway) {
  const server = new ApolloServer({ gateway, includeStacktraceInErrorResponses: false });
  await server.start();
  return server;
}

async function answer(server: ApolloServer, testCase: Case): Promise<string> {
  const response = await server.executeOperation({
    query: testCase.query,
    variables: testCase.variables,
    operationName: testCase.operationName,
  });
  return JSON.stringify({ status: response.http.status, body: response.body });
}

describe('query-plan executor: identical to the stock Apollo Gateway', () => {
  let shop: RunningShop;
  let stock: ApolloServer;
  let ours: ApolloServer;
  let oursGateway: FastApolloGateway;

  beforeAll(async () => {
    shop = await startShop();
    stock = await gatewayServer(new ApolloGateway({ supergraphSdl: shop.supergraphSdl }));
    oursGateway = new FastApolloGateway({ supergraphSdl: shop.supergraphSdl });
    ours = await gatewayServer(oursGateway);
  });
  afterAll(async () => {
    await Promise.all([stock?.stop(), ours?.stop()]);
    await shop?.close();
  });

  it.each(corpus)('$name', async (testCase) => {
    const expected = await answer(stock, testCase);
    // Twice: the first run compiles the plan, the second uses the compiled one.
    expect(await answer(ours, testCase)).toBe(expected);
    expect(await answer(ours, testCase)).toBe(expected);
  });

  it('every plan but the introspection one ran on the compiled executor', async () => {
    for (const testCase of corpus) await answer(ours, testCase);
    // 21 operations: 3 refused before planning, 2 pairs sharing a document (one plan each), 1 introspection.
    expect(oursGateway.planCoverage()).toEqual({ compiled: 15, stock: 1 });
  });

  it('the corpus exercises errors, nulls and partial data (the comparison is not of empty answers)', async () => {
    const bodies = await Promise.all(corpus.map((testCase) => answer(stock, testCase)));
    const joined = bodies.join('\n');
    for (const expected of ['INVENTORY_DOWN', 'ACCOUNTS_DOWN', '"path":["topProducts",5', 'rating unavailable', '"data":null', 'Product 1', 'HARDCOVER', '2024-05-01T00:00:00Z', '"rating":7.5']) {
      expect(joined).toContain(expected);
    }
  });

  it('a subgraph that cannot be reached: the same partial data and errors', async () => {
    const inventory = shop.subgraphs.find((subgraph) => subgraph.name === 'inventory')!;
    const sdl = shop.supergraphSdl.replace(inventory.url, 'http://127.0.0.1:9/graphql');
    const [downStock, downOurs] = await Promise.all([gatewayServer(new ApolloGateway({ supergraphSdl: sdl })), gatewayServer(new FastApolloGateway({ supergraphSdl: sdl }))]);
    try {
      const testCase = { name: 'heavy', query: HEAVY_QUERY };
      const expected = await answer(downStock, testCase);
      expect(expected).toContain('"errors"');
      expect(await answer(downOurs, testCase)).toBe(expected);
    } finally {
      await Promise.all([downStock.stop(), downOurs.stop()]);
    }
  });
});
