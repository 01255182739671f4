import { buildSchema, parse, type OperationDefinitionNode } from 'graphql';
import { describe, expect, it } from 'vitest';
import { applyRemovals, deniedFieldErrors, filterOperation, type FieldCheck } from '../../src/graphql/field-guard.js';

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
