import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { librarySubgraph } from '../helpers/library-subgraph.js';
import { postGraphQL, startStack, type Stack } from '../helpers/stack.js';

let stack: Stack;
beforeAll(async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'gw-cost-')), 'gateway.yaml');
  // Configuration still overrides what the schema declares.
  writeFileSync(file, stringify({ operationLimits: { maxCost: 200, costInResponse: true, fieldCosts: { 'Query.shelf': 10 } } }));
  stack = await startStack({ definitions: [librarySubgraph()], env: { GATEWAY_CONFIG: file, DEFAULT_TENANT_ID: 'acme' } });
});
afterAll(() => stack.close());

async function estimate(query: string): Promise<number | undefined> {
  const { body } = await postGraphQL(stack.url, { query });
  return (body as { extensions?: { cost?: { estimated?: number } } }).extensions?.cost?.estimated;
}

describe('@cost and @listSize declared by a subgraph', () => {
  it('field weights and slicing arguments come from the supergraph', async () => {
    expect(await estimate('{ searchBooks(limit: 4) { title } }')).toBe(4 * 5);
    expect(await estimate('{ library(first: 6) { edges { node { id } } } }')).toBe(1 + 6 + 6); // sizedFields: edges has 6 items
  });

  it('an assumed size applies without a slicing argument, and the enforced limit uses it', async () => {
    const { status, body } = await postGraphQL(stack.url, { query: '{ searchBooks { id } }' });
    expect(status).toBe(400);
    expect(body.errors?.[0]?.extensions?.code).toBe('OPERATION_TOO_COMPLEX');
    expect(body.errors?.[0]?.message).toMatch(/cost is 250; the limit is 200/); // 50 assumed × weight 5
  });

  it('type weights apply to fields returning the type; configured field costs override the schema', async () => {
    // shelf: 3 assumed × 10 (configured, not the default 1); summary: 3 × 2; author: 3 × 4 (type weight).
    expect(await estimate('{ shelf { summary author { name } } }')).toBe(30 + 6 + 12);
    const { body } = await postGraphQL(stack.url, { query: '{ shelf { title author { name } } }' });
    expect(body.errors).toBeUndefined();
    expect((body.data as { shelf: unknown[] }).shelf).toHaveLength(3);
  });
});
