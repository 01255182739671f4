import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { buildSchema } from 'graphql';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { breakingChanges, composeFromConfig, formatBreakingChange, schemaBreakingChanges } from '../../src/composition/compose.js';

const run = promisify(execFile);
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const composeScript = join(repoRoot, 'scripts/compose.ts');
// Resolved here: the CLI also runs from temporary directories, where `--import tsx` would not resolve.
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const configPath = 'supergraph/subgraphs.yaml';
const outPath = 'supergraph/supergraph.graphql';

/** Copies supergraph/ and the schema files its config points at (relative to the config) into `dir`. */
function copyCompositionInputs(dir: string): void {
  cpSync(join(repoRoot, 'supergraph'), join(dir, 'supergraph'), { recursive: true });
  const config = parseYaml(readFileSync(join(repoRoot, configPath), 'utf8')) as { subgraphs: Record<string, { schema: string }> };
  for (const { schema } of Object.values(config.subgraphs)) {
    const source = resolve(repoRoot, dirname(configPath), schema);
    const target = join(dir, relative(repoRoot, source));
    mkdirSync(dirname(target), { recursive: true });
    cpSync(source, target);
  }
}

/** Runs the compose CLI in `cwd`; exit code and stdout + stderr, whatever the outcome. */
async function composeIn(cwd: string, ...args: string[]) {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', tsxLoader, composeScript, ...args], { cwd });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failure = error as { code: number; stdout: string; stderr: string };
    return { code: failure.code, output: failure.stdout + failure.stderr };
  }
}

function editSchema(dir: string, subgraph: string, edit: (sdl: string) => string) {
  const path = join(dir, 'subgraphs', subgraph, 'schema.graphql');
  const before = readFileSync(path, 'utf8');
  const after = edit(before);
  if (after === before) throw new Error(`the edit of ${subgraph}'s schema changed nothing`);
  writeFileSync(path, after);
}

const removeSearch = (sdl: string) => sdl.replace(/  "Full-text search[^\n]*\n  search\(term: String!\)[^\n]*\n/, '');

describe('npm run compose', () => {
  let dir: string;
  /** A copy of the repository's composition inputs, so tests can break them freely. */
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'gw-compose-'));
    copyCompositionInputs(dir);
    return () => rmSync(dir, { recursive: true, force: true });
  });
  const compose = (...args: string[]) => composeIn(dir, '--config', configPath, '--out', outPath, ...args);

  it('the committed supergraph is up to date with the subgraph schemas', async () => {
    const result = await compose('--check', '--fail-on-breaking');
    expect(result.output).toContain('up to date');
    expect(result.code).toBe(0);
  });

  it('--check fails with each error, its code and the subgraphs involved', async () => {
    // Two subgraphs now disagree on the type of Product.price.
    editSchema(dir, 'inventory', (sdl) => sdl.replace('price: Int! @external', 'price: String! @external'));
    const result = await compose('--check', '--fail-on-breaking');
    expect(result.code).toBe(1);
    expect(result.output).toMatch(/EXTERNAL_TYPE_MISMATCH|FIELD_TYPE_MISMATCH/);
    expect(result.output).toMatch(/subgraphs: .*(catalog|inventory)/);
  });

  it('--check fails when the committed supergraph is stale', async () => {
    editSchema(dir, 'catalog', (sdl) => sdl.replace('  weight: Int!', '  weight: Int!\n  color: String'));
    const result = await compose('--check', '--fail-on-breaking');
    expect(result.code).toBe(2);
    expect(result.output).toMatch(/stale/);
  });

  it('--check --fail-on-breaking exits 3, not 2, when the stale file also hides a breaking change', async () => {
    editSchema(dir, 'catalog', removeSearch);
    const result = await compose('--check', '--fail-on-breaking');
    expect(result.code).toBe(3);
    expect(result.output).toMatch(/^ {2}Query\.search \(FIELD_REMOVED\): Query\.search was removed\.$/m);
    expect(result.output).toMatch(/stale/);
  });

  it('reports breaking changes and fails on them with --fail-on-breaking, without writing', async () => {
    editSchema(dir, 'accounts', (sdl) => sdl.replace(/  "What the gateway told[^\n]*\n  whoami: Caller!\n/, ''));
    const before = readFileSync(join(dir, outPath), 'utf8');
    const result = await compose('--fail-on-breaking');
    expect(result.code).toBe(3);
    expect(result.output).toMatch(/Query\.whoami \(FIELD_REMOVED\): Query\.whoami was removed/);
    expect(readFileSync(join(dir, outPath), 'utf8')).toBe(before);
    // Without the flag the change is reported but written.
    const written = await compose();
    expect(written.code).toBe(0);
    expect(written.output).toMatch(/Query\.whoami \(FIELD_REMOVED\)/);
    expect(readFileSync(join(dir, outPath), 'utf8')).not.toMatch(/\bwhoami\b/);
  });

  it('detects changed argument types as breaking', () => {
    const before = composeFromConfig(join(dir, configPath));
    editSchema(dir, 'catalog', (sdl) => sdl.replace('product(upc: ID!)', 'product(upc: Int!)'));
    const after = composeFromConfig(join(dir, configPath));
    if (!before.ok || !after.ok) throw new Error('composition should succeed');
    expect(breakingChanges(before.supergraphSdl, after.supergraphSdl).map(formatBreakingChange)).toEqual([
      'Query.product(upc:) (ARG_CHANGED_KIND): Query.product arg upc has changed type from ID! to Int!.',
    ]);
  });

  it('--help prints the usage and exits 0', async () => {
    const result = await compose('--help');
    expect(result.code).toBe(0);
    expect(result.output).toMatch(/^Usage: npm run compose/);
    expect(result.output).toContain('--against <baseline>');
  });

  it('an unknown option is named in one line with the usage hint, without a stack trace', async () => {
    const result = await compose('--frobnicate');
    expect(result.code).toBe(64);
    expect(result.output.trim().split('\n')).toEqual([
      "Unknown option '--frobnicate'",
      'Run `npm run compose -- --help` for usage.',
    ]);
  });
});

describe('breaking changes name their schema coordinate', () => {
  const before = buildSchema(`
    directive @cached(ttl: Int) repeatable on FIELD_DEFINITION | OBJECT
    directive @legacy on FIELD_DEFINITION
    interface Node { id: ID! }
    enum Color { RED GREEN }
    input Filter { term: String }
    type Product implements Node { id: ID! color: Color name: String }
    type Offer { id: ID! }
    union Result = Product | Offer
    type Query { product(upc: ID!, region: String): Product search(filter: Filter): [Result!]! old: Int }
  `);
  const after = buildSchema(`
    directive @cached(scope: String!) on OBJECT
    enum Color { RED }
    input Filter { term: String, tenant: ID! }
    type Product { id: ID! color: Color name: Int }
    type Offer { id: ID! }
    union Result = Product
    type Query { product(upc: Int!, locale: String!): Product search(filter: Filter): [Result!]! }
  `);

  it('for every kind of change graphql-js reports', () => {
    const found = schemaBreakingChanges(before, after).map(({ type, coordinate }) => `${type} ${coordinate}`);
    expect(found.sort()).toEqual(
      [
        'TYPE_REMOVED Node',
        'TYPE_REMOVED_FROM_UNION Result',
        'VALUE_REMOVED_FROM_ENUM Color.GREEN',
        'REQUIRED_INPUT_FIELD_ADDED Filter.tenant',
        'IMPLEMENTED_INTERFACE_REMOVED Product',
        'FIELD_CHANGED_KIND Product.name',
        'FIELD_REMOVED Query.old',
        'ARG_CHANGED_KIND Query.product(upc:)',
        'ARG_REMOVED Query.product(region:)',
        'REQUIRED_ARG_ADDED Query.product(locale:)',
        'DIRECTIVE_REMOVED @legacy',
        'DIRECTIVE_ARG_REMOVED @cached(ttl:)',
        'REQUIRED_DIRECTIVE_ARG_ADDED @cached(scope:)',
        'DIRECTIVE_REPEATABLE_REMOVED @cached',
        'DIRECTIVE_LOCATION_REMOVED @cached',
      ].sort(),
    );
  });
});

/** git with an identity and no signing, so commits work on machines without a git configuration. */
async function git(cwd: string, ...args: string[]): Promise<string> {
  const identity = ['-c', 'user.name=compose-test', '-c', 'user.email=compose-test@example.invalid', '-c', 'commit.gpgsign=false'];
  const { stdout } = await run('git', [...identity, ...args], { cwd });
  return stdout;
}

describe('npm run compose -- --check --fail-on-breaking --against <baseline>', () => {
  let repo: string;
  let baselineFile: string;
  let server: Server;
  let baseUrl: string;

  /** A git repository whose last commit removed Query.search and recomposed: the working copy is consistent. */
  beforeAll(async () => {
    repo = mkdtempSync(join(tmpdir(), 'gw-compose-git-'));
    copyCompositionInputs(repo);
    await git(repo, 'init', '--quiet');
    await git(repo, 'add', '.');
    await git(repo, 'commit', '--quiet', '-m', 'baseline');
    const baselineSdl = readFileSync(join(repo, outPath), 'utf8');

    editSchema(repo, 'catalog', removeSearch);
    const recomposed = await composeIn(repo);
    expect(recomposed.code).toBe(0);
    await git(repo, 'commit', '--quiet', '--all', '-m', 'remove Query.search');

    baselineFile = join(mkdtempSync(join(tmpdir(), 'gw-compose-baseline-')), 'supergraph.graphql');
    writeFileSync(baselineFile, baselineSdl);
    server = createServer((request, response) => {
      if (request.url === '/supergraph.graphql') response.end(baselineSdl);
      else response.writeHead(404).end('not found');
    });
    await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((closed) => server?.close(closed));
    for (const dir of [repo, baselineFile && dirname(baselineFile)]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const check = (against: string) => composeIn(repo, '--check', '--fail-on-breaking', '--against', against);

  it('without --against the committed file is the baseline, so the removal passes (the old behaviour)', async () => {
    const result = await composeIn(repo, '--check', '--fail-on-breaking');
    expect(result.code).toBe(0);
  });

  it('a git ref before the removal: exits 3 and names Query.search', async () => {
    const result = await check('HEAD~1');
    expect(result.code).toBe(3);
    expect(result.output).toContain('breaking change(s) against HEAD~1');
    expect(result.output).toMatch(/^ {2}Query\.search \(FIELD_REMOVED\)/m);
    expect(result.output).not.toMatch(/stale/);
  });

  it('the git ref of the working copy: exits 0', async () => {
    const result = await check('HEAD');
    expect(result.code).toBe(0);
    expect(result.output).toContain('up to date');
  });

  it('a git ref, run from a subdirectory of the clone', async () => {
    const paths = ['--config', 'subgraphs.yaml', '--out', 'supergraph.graphql'];
    const result = await composeIn(join(repo, 'supergraph'), ...paths, '--check', '--fail-on-breaking', '--against', 'HEAD~1');
    expect(result.code).toBe(3);
    expect(result.output).toMatch(/Query\.search \(FIELD_REMOVED\)/);
  });

  it('a file: exits 3 and names Query.search', async () => {
    const result = await check(baselineFile);
    expect(result.code).toBe(3);
    expect(result.output).toMatch(/Query\.search \(FIELD_REMOVED\)/);
  });

  it('an http URL: exits 3 and names Query.search', async () => {
    const result = await check(`${baseUrl}/supergraph.graphql`);
    expect(result.code).toBe(3);
    expect(result.output).toMatch(/Query\.search \(FIELD_REMOVED\)/);
  });

  it('an unknown ref or a missing URL: exits 4 with one clear line', async () => {
    const unknownRef = await check('no-such-branch');
    expect(unknownRef.code).toBe(4);
    expect(unknownRef.output.trim()).toMatch(/^Cannot read baseline no-such-branch from git: fatal: .*no-such-branch/);
    expect(unknownRef.output.trim().split('\n')).toHaveLength(1);

    const missing = await check(`${baseUrl}/missing.graphql`);
    expect(missing.code).toBe(4);
    expect(missing.output.trim()).toBe(`Cannot read baseline ${baseUrl}/missing.graphql: HTTP 404 Not Found`);
  });
});
