import { buildSchema, parse, print, type OperationDefinitionNode } from 'graphql';
import { describe, expect, it } from 'vitest';
import { GUARD_TYPENAME, applyRemovals, deniedFieldErrors, filterOperation, withoutGuardTypenames, type FieldCheck } from '../../src/graphql/field-guard.js';

const schema = buildSchema(`
  type Query { users: [User]!, strictUsers: [User!]!, me: User, search: [Result!]! }
  type User { id: ID!, secret: String!, note: String }
  type Post { id: ID!, title: String }
  union Result = User | Post
`);
const denySecret: FieldCheck = (parent, field) => (field.name === 'secret' || (parent.name === 'Post' && field.name === 'title') ? { code: 'UNAUTHORIZED_FIELD_OR_TYPE', message: 'no' } : null);

function run(query: string, data: Record<string, unknown>) {
  const document = parse(query);
  const result = filterOperation(schema, document, document.definitions[0] as OperationDefinitionNode, denySecret)!;
  return applyRemovals(structuredClone(data), result.removals);
}

describe('field guard null bubbling', () => {
  it('a non-null field nulls its item in a list of nullable items, and nothing else', () => {
    expect(run('{ users { id secret } me { id } }', { users: [{ id: '1' }, { id: '2' }], me: { id: '1' } })).toEqual({
      users: [null, null],
      me: { id: '1' },
    });
  });

  it('with non-null items the null reaches the list, and through a non-null list the root', () => {
    expect(run('{ strictUsers { id secret } me { id } }', { strictUsers: [{ id: '1' }], me: { id: '1' } })).toBeNull();
  });

  it('inside an object, the null stops at the nearest nullable field', () => {
    expect(run('{ me { id note secret } }', { me: { id: '1', note: 'n' } })).toEqual({ me: null });
  });
});

describe('type-level authorization through fragments', () => {
  it('fields of an @authenticated type are denied when reached through an interface fragment', async () => {
    const { authorizationCheck, authorizationRequirements } = await import('../../src/graphql/field-authorization.js');
    const { anonymousPrincipal } = await import('../../src/auth/principal.js');
    const sdl = `
      schema @link(url: "https://specs.apollo.dev/authenticated/v0.1", for: SECURITY) { query: Query }
      directive @link(url: String, as: String, for: String, import: [String]) repeatable on SCHEMA
      directive @authenticated on OBJECT | FIELD_DEFINITION
      type Query { node: Node }
      interface Node { id: ID! }
      type Vault implements Node @authenticated { id: ID!, code: String }
      type Open implements Node { id: ID! }`;
    const vaultSchema = buildSchema(sdl);
    const check = authorizationCheck(authorizationRequirements(sdl), anonymousPrincipal())!;
    const document = parse('{ node { id ... on Vault { code } } }');
    const result = filterOperation(vaultSchema, document, document.definitions[0] as OperationDefinitionNode, check)!;
    expect(result.removals.map((r) => r.path.map((p) => p.key))).toEqual([['node', 'code']]);
  });
});

describe('denied-field error paths', () => {
  const errorPaths = (query: string, data: Record<string, unknown>) => {
    const document = parse(query);
    const result = filterOperation(schema, document, document.definitions[0] as OperationDefinitionNode, denySecret)!;
    return deniedFieldErrors(structuredClone(data), result.removals).map((error) => error.path);
  };

  it('carry the list index of every occurrence', () => {
    expect(errorPaths('{ users { id secret } me { secret } }', { users: [{ id: '1' }, null, { id: '3' }], me: { id: '1' } })).toEqual([
      ['users', 0, 'secret'],
      ['users', 2, 'secret'],
      ['me', 'secret'],
    ]);
  });

  it('name the deepest existing path when the data holds no occurrence', () => {
    expect(errorPaths('{ users { secret } }', { users: [] })).toEqual([['users']]);
    expect(errorPaths('{ me { secret } }', { me: null })).toEqual([['me']]);
  });
});

describe('interface field requirements', () => {
  it('a requirement on an interface field applies to the fields that implement it', async () => {
    const { authorizationCheck, authorizationRequirements } = await import('../../src/graphql/field-authorization.js');
    const { anonymousPrincipal } = await import('../../src/auth/principal.js');
    const sdl = `
      schema @link(url: "https://specs.apollo.dev/requiresScopes/v0.1", for: SECURITY) { query: Query }
      directive @link(url: String, as: String, for: String, import: [String]) repeatable on SCHEMA
      directive @requiresScopes(scopes: [[String!]!]!) on OBJECT | FIELD_DEFINITION | INTERFACE
      type Query { accounts: [Account!]! }
      interface Account { id: ID!, balance: Int @requiresScopes(scopes: [["read:balance"]]) }
      type Savings implements Account { id: ID!, balance: Int, rate: Float }
      type Checking implements Account { id: ID!, balance: Int }`;
    const accountSchema = buildSchema(sdl);
    const requirements = authorizationRequirements(sdl);
    const removedPaths = (principal: import('../../src/auth/principal.js').Principal) => {
      const document = parse('{ accounts { id ... on Savings { balance rate } ... on Checking { balance } } }');
      const check = authorizationCheck(requirements, principal)!;
      const result = filterOperation(accountSchema, document, document.definitions[0] as OperationDefinitionNode, check);
      return result?.removals.map((r) => r.path.map((p) => p.key)) ?? [];
    };
    const anonymous = anonymousPrincipal();
    expect(removedPaths(anonymous)).toEqual([
      ['accounts', 'balance'],
      ['accounts', 'balance'],
    ]);
    expect(removedPaths({ ...anonymous, kind: 'user', id: 'u1', permissions: ['read:balance'] } as typeof anonymous)).toEqual([]);
  });
});

describe('denied fields under a union or interface hold for their fragment type only', () => {
  const abstractSchema = buildSchema(`
    type Query { search: [Result!]!, feed: [Node] }
    interface Node { id: ID! }
    type User implements Node { id: ID!, title: String! }
    type Post implements Node { id: ID!, title: String! }
    union Result = User | Post
  `);
  const denyPostTitle: FieldCheck = (parent, field) => (parent.name === 'Post' && field.name === 'title' ? { code: 'UNAUTHORIZED_FIELD_OR_TYPE', message: 'no' } : null);
  // The guard's filtered operation asks each item's type; the subgraphs answer it under the guard's alias.
  const guarded = (query: string, data: Record<string, unknown>) => {
    const document = parse(query);
    const result = filterOperation(abstractSchema, document, document.definitions[0] as OperationDefinitionNode, denyPostTitle)!;
    const input = structuredClone(data);
    const errors = deniedFieldErrors(input, result.removals).map((error) => error.path);
    return { printed: print(result.document), removals: result.removals.length, errors, data: withoutGuardTypenames(applyRemovals(input, result.removals), result.typenames) };
  };
  const user = { [GUARD_TYPENAME]: 'User', id: 'u1', title: 'Ms' };
  const post = { [GUARD_TYPENAME]: 'Post', id: 'p1' };

  it('union: a User item keeps its title, and the added __typename never reaches the client', () => {
    const result = guarded('{ search { ... on User { id title } ... on Post { id title } } }', { search: [user] });
    expect(result.printed).toContain(`${GUARD_TYPENAME}: __typename`);
    expect(result.data).toEqual({ search: [{ id: 'u1', title: 'Ms' }] });
    expect(result.errors).toEqual([['search']]); // no Post in the data: the denial is still reported
  });

  it('union: a Post item loses its non-null title, and the null bubbles as execution would', () => {
    const result = guarded('{ search { ... on User { id title } ... on Post { id title } } }', { search: [user, post] });
    expect(result.errors).toEqual([['search', 1, 'title']]);
    expect(result.data).toBeNull(); // Post.title: String! → item → [Result!]! → data
  });

  it('interface: only the Post item of a nullable-item list is nulled', () => {
    const result = guarded('{ feed { id ... on User { title } ... on Post { title } } }', { feed: [user, post] });
    expect(result.data).toEqual({ feed: [{ id: 'u1', title: 'Ms' }, null] });
    expect(result.errors).toEqual([['feed', 1, 'title']]);
  });

  it('the same field reached through two fragments is removed and reported once', () => {
    const result = guarded('{ feed { ... on Post { title } ... on Post { title } } }', { feed: [post] });
    expect(result.removals).toBe(2); // title, and feed left with nothing to select
    expect(result.errors).toEqual([['feed', 0, 'title']]);
  });
});
