import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGateway } from '../../src/app.js';
import { composeSubgraphs } from '../../src/composition/compose.js';
import { loadConfig } from '../../src/config/load.js';
import { accountsSubgraph } from '../../subgraphs/accounts/index.js';
import { catalogSubgraph } from '../../subgraphs/catalog/index.js';
import { readSchema, startSubgraph, type RunningSubgraph, type SubgraphDefinition } from '../../subgraphs/shared/server.js';
import { eventually } from '../helpers/eventually.js';
import { reviewsSubgraph } from '../helpers/reviews-subgraph.js';
import { lazyGatewayJwks, postGraphQL, startStack, type Stack } from '../helpers/stack.js';

const ANONYMOUS_ACME = { DEFAULT_TENANT_ID: 'acme' };

interface Readiness {
  status: string;
  reason?: string;
  supergraph: { hash: string };
}
async function readiness(url: string): Promise<{ status: number; body: Readiness }> {
  const response = await fetch(`${url}/health/ready`);
  return { status: response.status, body: (await response.json()) as Readiness };
}

/** How many supergraph files the gateway has loaded or rejected so far. */
async function reloads(stack: Stack, result: 'loaded' | 'rejected'): Promise<number> {
  const metric = await stack.gateway.metrics.supergraphReloads.get();
  return metric.values.find((v) => v.labels.result === result)?.value ?? 0;
}

/** Writes like a deploy tool does: a temp file renamed over the old one. */
function replaceFile(path: string, content: string) {
  const temp = join(dirname(path), `.next-${Date.now()}`);
  writeFileSync(temp, content);
  renameSync(temp, path);
}

function supergraphOf(running: { subgraph: RunningSubgraph; definition: SubgraphDefinition }[]): string {
  const outcome = composeSubgraphs(
    running.map(({ subgraph, definition }) => ({ name: subgraph.name, url: subgraph.url, sdl: readSchema(definition.schemaFile) })),
  );
  if (!outcome.ok) throw new Error('composition failed');
  return outcome.supergraphSdl;
}

describe('supergraph hot reload', () => {
  let stack: Stack;
  let reviews: { subgraph: RunningSubgraph; definition: SubgraphDefinition };
  let accounts: { subgraph: RunningSubgraph; definition: SubgraphDefinition };
  let delay = 0;
  let reviewResolving: (() => void) | null = null;
  const catalogDefinition = catalogSubgraph();

  beforeAll(async () => {
    stack = await startStack({ definitions: [catalogDefinition], env: ANONYMOUS_ACME });
    const keys = lazyGatewayJwks();
    keys.setUrl(stack.url);
    const reviewsDefinition = reviewsSubgraph({
      delayMs: () => {
        reviewResolving?.();
        return delay;
      },
    });
    reviews = { definition: reviewsDefinition, subgraph: await startSubgraph(reviewsDefinition, keys) };
    const accountsDefinition = accountsSubgraph();
    accounts = { definition: accountsDefinition, subgraph: await startSubgraph(accountsDefinition, keys) };
  });
  afterAll(async () => {
    await stack.close();
    await reviews.subgraph.close();
    await accounts.subgraph.close();
  });

  const catalog = () => ({ definition: catalogDefinition, subgraph: stack.subgraphs.catalog! });

  it('picks up a new valid supergraph without a restart', async () => {
    const before = await postGraphQL(stack.url, { query: '{ products(first: 1) { reviewCount } }' });
    expect(before.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    const hashBefore = (await readiness(stack.url)).body.supergraph.hash;

    replaceFile(stack.supergraphPath, supergraphOf([catalog(), reviews]));
    await eventually(async () => {
      const after = await postGraphQL(stack.url, { query: '{ products(first: 1) { name reviewCount } }' });
      expect(after.body).toEqual({ data: { products: [{ name: 'Anvil', reviewCount: 10 }] } });
    });
    const hashAfter = (await readiness(stack.url)).body.supergraph.hash;
    expect(hashAfter).not.toBe(hashBefore);
  });

  it('refuses an invalid supergraph and keeps serving the previous one', async () => {
    const readyBefore = (await readiness(stack.url)).body;
    const rejectedBefore = await reloads(stack, 'rejected');
    replaceFile(stack.supergraphPath, 'schema @link(url: "https://specs.apollo.dev/link/v1.0") { query: Query } type Query { broken: ');
    await eventually(async () => expect(await reloads(stack, 'rejected')).toBeGreaterThan(rejectedBefore));
    const response = await postGraphQL(stack.url, { query: '{ products(first: 1) { name reviewCount } }' });
    expect(response.body).toEqual({ data: { products: [{ name: 'Anvil', reviewCount: 10 }] } });
    const readyAfter = await readiness(stack.url);
    expect(readyAfter.status).toBe(200);
    expect(readyAfter.body.supergraph.hash).toBe(readyBefore.supergraph.hash);
  });

  it('finishes in-flight requests across a reload', async () => {
    replaceFile(stack.supergraphPath, supergraphOf([catalog(), reviews]));
    await eventually(async () => expect((await fetch(`${stack.url}/health/ready`)).status).toBe(200));
    delay = 1_000;
    const resolving = new Promise<void>((resolve) => (reviewResolving = resolve));
    const inFlight = postGraphQL(stack.url, { query: '{ latestReview { body delayedBy } }' });
    await resolving; // planned and sent under the old supergraph before the new one is written
    reviewResolving = null;
    replaceFile(stack.supergraphPath, supergraphOf([catalog(), reviews, accounts]));
    await eventually(async () => {
      const users = await postGraphQL(stack.url, { query: '{ users { id } }' });
      expect(users.body.data).toEqual({ users: [{ id: 'u-acme-1' }, { id: 'u-acme-2' }] });
    });
    expect((await inFlight).body).toEqual({ data: { latestReview: { body: 'Works as advertised', delayedBy: 1000 } } });
    delay = 0;
  });
});

describe('reloading what only the gateway reads', () => {
  it('a changed @requiresScopes takes effect even though the executable supergraph is unchanged', async () => {
    const stack = await startStack({ env: ANONYMOUS_ACME });
    try {
      const viewer = await stack.bearer({ roles: ['viewer'] });
      const notes = async () => (await postGraphQL(stack.url, { query: '{ orders { id internalNotes } }' }, viewer)).body;
      expect((await notes()).errors?.[0]?.extensions?.code).toBe('UNAUTHORIZED_FIELD_OR_TYPE');

      const sdl = readFileSync(stack.supergraphPath, 'utf8');
      const relaxed = sdl.replace('internalNotes: String @requiresScopes(scopes: [["admin"]])', 'internalNotes: String @requiresScopes(scopes: [["viewer"]])');
      expect(relaxed).not.toBe(sdl);
      replaceFile(stack.supergraphPath, relaxed);
      await eventually(async () => {
        const body = await notes();
        expect(body.errors).toBeUndefined();
        expect((body.data as { orders: { internalNotes: string | null }[] }).orders[0]!.internalNotes).toBe('Customer asked for gift wrapping');
      });

      // And back: the stricter requirement applies again.
      replaceFile(stack.supergraphPath, sdl);
      await eventually(async () => expect((await notes()).errors?.[0]?.extensions?.code).toBe('UNAUTHORIZED_FIELD_OR_TYPE'));
    } finally {
      await stack.close();
    }
  });
});

describe('readiness before a supergraph is loaded', () => {
  it('answers 503 with a reason, then becomes ready when a valid file appears', async () => {
    const catalogDefinition = catalogSubgraph();
    const keys = lazyGatewayJwks();
    const catalog = await startSubgraph(catalogDefinition, keys);
    const path = join(mkdtempSync(join(tmpdir(), 'gw-ready-')), 'supergraph.graphql');
    writeFileSync(path, 'this is not a supergraph');
    const config = loadConfig({ SUPERGRAPH_PATH: path, LOG_LEVEL: 'silent', AUTH_GRAPHQL: 'optional', ...ANONYMOUS_ACME });
    const gateway = await buildGateway(config);
    const url = await gateway.app.listen({ port: 0, host: '127.0.0.1' });
    keys.setUrl(url);
    try {
      expect((await fetch(`${url}/health`)).status).toBe(200);
      await eventually(async () => {
        const ready = await readiness(url);
        expect(ready.status).toBe(503);
        expect(ready.body.reason).toMatch(/syntax|unexpected/i);
      });
      const early = await postGraphQL(url, { query: '{ products { upc } }' });
      expect(early.status).toBe(503);
      expect(early.body.errors?.[0]?.extensions?.code).toBe('SUPERGRAPH_NOT_LOADED');

      replaceFile(path, supergraphOf([{ definition: catalogDefinition, subgraph: catalog }]));
      await gateway.graphql.started;
      expect((await fetch(`${url}/health/ready`)).status).toBe(200);
      const later = await postGraphQL(url, { query: '{ products(first: 1) { upc } }' });
      expect(later.body).toEqual({ data: { products: [{ upc: 'acme-anvil' }] } });
    } finally {
      await gateway.app.close();
      await catalog.close();
    }
  });
});
