import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../src/graphql/persisted-queries.js';
import { catalogSubgraph } from '../../subgraphs/catalog/index.js';
import type { SubgraphDefinition } from '../../subgraphs/shared/server.js';
import { postGraphQL, startStack, type Stack } from '../helpers/stack.js';

/**
 * Anyone can send a malformed request, so none may look like a server fault: no 5xx, no
 * INTERNAL_SERVER_ERROR, and nothing logged at warn or error (a log line with a stack per request
 * would let anyone flood the logs). Production mode, where it matters.
 */
const lines: { level: number; msg: string; reqId?: string }[] = [];
const logStream = new Writable({
  write(chunk, _encoding, done) {
    for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line) as (typeof lines)[number]);
    done();
  },
});

/** A subgraph with a Subscription root type: the supergraph has one, Apollo Gateway cannot run it. */
function tickerSubgraph(): SubgraphDefinition {
  const schemaFile = join(mkdtempSync(join(tmpdir(), 'gw-ticker-')), 'schema.graphql');
  writeFileSync(
    schemaFile,
    'extend schema @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@key"])\n' +
      'type Query { tick: Int }\ntype Subscription { ticks: Int }\n',
  );
  return { name: 'ticker', schemaFile, resolvers: { Query: { tick: () => 1 } } };
}

const QUERY = '{ products(first: 1) { upc } }';
const BY_UPC = 'query ($upc: ID!) { product(upc: $upc) { upc } }';
const apq = (version: unknown, sha256Hash: unknown) => ({ persistedQuery: { version, sha256Hash } });

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({
    definitions: [catalogSubgraph(), tickerSubgraph()],
    logger: { level: 'debug', stream: logStream },
    env: { NODE_ENV: 'production', DEFAULT_TENANT_ID: 'acme' },
  });
});
afterAll(() => stack.close());

const cases: { name: string; body: unknown; status: number; code: string }[] = [
  // Automatic Persisted Queries
  { name: 'APQ hash that does not match the query', body: { query: QUERY, extensions: apq(1, sha256('something else')) }, status: 400, code: 'BAD_REQUEST' },
  { name: 'APQ hash that is not a string', body: { query: QUERY, extensions: apq(1, 42) }, status: 400, code: 'BAD_REQUEST' },
  { name: 'APQ version 2', body: { query: QUERY, extensions: apq(2, sha256(QUERY)) }, status: 400, code: 'BAD_REQUEST' },
  { name: 'APQ version as a string', body: { extensions: apq('1', sha256(QUERY)) }, status: 400, code: 'BAD_REQUEST' },
  { name: 'APQ extension that is not an object', body: { query: QUERY, extensions: { persistedQuery: 'yes' } }, status: 400, code: 'BAD_REQUEST' },
  { name: 'APQ hash never registered', body: { extensions: apq(1, sha256('{ never { sent } }')) }, status: 200, code: 'PERSISTED_QUERY_NOT_FOUND' },
  { name: 'APQ without hash or query', body: { extensions: { persistedQuery: { version: 1 } } }, status: 200, code: 'PERSISTED_QUERY_NOT_FOUND' },
  // Variables
  { name: 'variable of the wrong type', body: { query: 'query ($n: Int) { products(first: $n) { upc } }', variables: { n: 'ten' } }, status: 400, code: 'BAD_USER_INPUT' },
  { name: 'required variable missing', body: { query: BY_UPC }, status: 400, code: 'BAD_USER_INPUT' },
  { name: 'required variable null', body: { query: BY_UPC, variables: { upc: null } }, status: 400, code: 'BAD_USER_INPUT' },
  { name: 'object for a scalar variable', body: { query: BY_UPC, variables: { upc: { $ne: 1 } } }, status: 400, code: 'BAD_USER_INPUT' },
  { name: 'variables that are not an object', body: { query: QUERY, variables: '{"n":1}' }, status: 400, code: 'BAD_REQUEST' },
  { name: 'undeclared variable', body: { query: '{ products(first: $n) { upc } }' }, status: 400, code: 'GRAPHQL_VALIDATION_FAILED' },
  // Operation names
  { name: 'unknown operationName', body: { query: QUERY, operationName: 'Nope' }, status: 400, code: 'OPERATION_RESOLUTION_FAILURE' },
  { name: 'operationName that is not a string', body: { query: QUERY, operationName: 5 }, status: 400, code: 'BAD_REQUEST' },
  { name: 'two operations, no operationName', body: { query: 'query A { __typename } query B { __typename }' }, status: 400, code: 'OPERATION_RESOLUTION_FAILURE' },
  // Types, documents, operation kinds
  { name: 'argument of the wrong type', body: { query: '{ products(first: "ten") { upc } }' }, status: 400, code: 'GRAPHQL_VALIDATION_FAILED' },
  { name: 'Int out of range', body: { query: '{ products(first: 99999999999) { upc } }' }, status: 400, code: 'GRAPHQL_VALIDATION_FAILED' },
  { name: 'unknown field', body: { query: '{ nope }' }, status: 400, code: 'GRAPHQL_VALIDATION_FAILED' },
  { name: 'syntax error', body: { query: '{ products(' }, status: 400, code: 'GRAPHQL_PARSE_FAILED' },
  { name: 'query that is not a string', body: { query: 5 }, status: 400, code: 'BAD_REQUEST' },
  { name: 'empty query', body: { query: '' }, status: 400, code: 'BAD_REQUEST' },
  { name: 'batch', body: [{ query: QUERY }], status: 400, code: 'BAD_REQUEST' },
  { name: 'introspection in production', body: { query: '{ __schema { types { name } } }' }, status: 400, code: 'GRAPHQL_VALIDATION_FAILED' },
  { name: 'mutation on a supergraph without a Mutation type', body: { query: 'mutation { products { upc } }' }, status: 400, code: 'GRAPHQL_VALIDATION_FAILED' },
  { name: 'subscription (Apollo Gateway cannot execute one)', body: { query: 'subscription { ticks }' }, status: 400, code: 'BAD_REQUEST' },
];

describe('client mistakes on /graphql (production)', () => {
  it.each(cases)('$name → $status $code, nothing logged above info', async ({ body, status, code }) => {
    const before = lines.length;
    const response = await postGraphQL(stack.url, body);
    expect(response.status).toBe(status);
    expect(response.body.errors?.map((error) => error.extensions?.code)).toEqual([code]);
    expect(response.body.errors?.[0]?.message).not.toBe('Internal server error');
    const loud = lines.slice(before).filter((line) => line.level >= 40);
    expect(loud.map((line) => line.msg)).toEqual([]);
  });

  it('APQ refusals stay visible at debug level, and a GET gets the same answer', async () => {
    const before = lines.length;
    const extensions = encodeURIComponent(JSON.stringify(apq(1, sha256('something else'))));
    const response = await fetch(`${stack.url}/graphql?query=${encodeURIComponent(QUERY)}&extensions=${extensions}`, {
      headers: { 'apollo-require-preflight': 'true' },
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { errors: { message: string; extensions: { code: string } }[] };
    expect(body.errors[0]).toMatchObject({ message: 'provided sha does not match query', extensions: { code: 'BAD_REQUEST' } });
    const mine = lines.slice(before);
    expect(mine.filter((line) => line.level >= 40)).toEqual([]);
    expect(mine.some((line) => line.level === 20 && line.msg === 'GraphQL request refused')).toBe(true);
  });

  it('still serves after all of that', async () => {
    expect((await postGraphQL(stack.url, { query: QUERY })).body).toEqual({ data: { products: [{ upc: 'acme-anvil' }] } });
  });
});
