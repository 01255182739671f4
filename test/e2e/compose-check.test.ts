import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeEach, describe, expect, it } from 'vitest';
import { breakingChanges, composeFromConfig } from '../../src/composition/compose.js';

const run = promisify(execFile);
let dir: string;

/** A copy of the repository's composition inputs, so tests can break them freely. */
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'gw-compose-'));
  cpSync('subgraphs', join(dir, 'subgraphs'), { recursive: true, filter: (src) => !src.endsWith('.ts') });
  cpSync('supergraph', join(dir, 'supergraph'), { recursive: true });
});

async function compose(...args: string[]) {
  const config = join(dir, 'supergraph/subgraphs.yaml');
  const out = join(dir, 'supergraph/supergraph.graphql');
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'scripts/compose.ts', '--config', config, '--out', out, ...args]);
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failure = error as { code: number; stdout: string; stderr: string };
    return { code: failure.code, output: failure.stdout + failure.stderr };
  }
}

function editSchema(subgraph: string, edit: (sdl: string) => string) {
  const path = join(dir, 'subgraphs', subgraph, 'schema.graphql');
  writeFileSync(path, edit(readFileSync(path, 'utf8')));
}

describe('npm run compose', () => {
  it('the committed supergraph is up to date with the subgraph schemas', async () => {
    const result = await compose('--check', '--fail-on-breaking');
    expect(result.output).toContain('up to date');
    expect(result.code).toBe(0);
  });

  it('--check fails with each error, its code and the subgraphs involved', async () => {
    // Two subgraphs now disagree on the type of Product.price.
    editSchema('inventory', (sdl) => sdl.replace('price: Int! @external', 'price: String! @external'));
    const result = await compose('--check');
    expect(result.code).toBe(1);
    expect(result.output).toMatch(/EXTERNAL_TYPE_MISMATCH|FIELD_TYPE_MISMATCH/);
    expect(result.output).toMatch(/subgraphs: .*(catalog|inventory)/);
  });

  it('--check fails when the committed supergraph is stale', async () => {
    editSchema('catalog', (sdl) => sdl.replace('  weight: Int!', '  weight: Int!\n  color: String'));
    const result = await compose('--check');
    expect(result.code).toBe(2);
    expect(result.output).toMatch(/stale/);
  });

  it('reports breaking changes and fails on them with --fail-on-breaking', async () => {
    editSchema('accounts', (sdl) => sdl.replace(/  "What the gateway told[^\n]*\n  whoami: Caller!\n/, ''));
    const result = await compose('--fail-on-breaking');
    expect(result.code).toBe(3);
    expect(result.output).toMatch(/FIELD_REMOVED: Query.whoami was removed/);
    // Without the flag the change is reported but written.
    const written = await compose();
    expect(written.code).toBe(0);
    expect(readFileSync(join(dir, 'supergraph/supergraph.graphql'), 'utf8')).not.toMatch(/\bwhoami\b/);
  });

  it('detects changed argument types as breaking', () => {
    const before = composeFromConfig(join(dir, 'supergraph/subgraphs.yaml'));
    editSchema('catalog', (sdl) => sdl.replace('product(upc: ID!)', 'product(upc: Int!)'));
    const after = composeFromConfig(join(dir, 'supergraph/subgraphs.yaml'));
    if (!before.ok || !after.ok) throw new Error('composition should succeed');
    expect(breakingChanges(before.supergraphSdl, after.supergraphSdl)).toEqual([
      'ARG_CHANGED_KIND: Query.product arg upc has changed type from ID! to Int!.',
    ]);
  });
});
