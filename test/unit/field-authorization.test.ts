import { Kind, buildSchema, type FieldNode } from 'graphql';
import { describe, expect, it } from 'vitest';
import { anonymousPrincipal, type Principal } from '../../src/auth/principal.js';
import { authorizationCheck, authorizationRequirements, principalKey } from '../../src/graphql/field-authorization.js';

const sdl = `
  schema @link(url: "https://specs.apollo.dev/link/v1.0") @link(url: "https://specs.apollo.dev/requiresScopes/v0.1", import: ["@requiresScopes"]) { query: Query }
  type Query {
    spaced: String @requiresScopes(scopes: [["all read"]])
    pair: String @requiresScopes(scopes: [["read", "all"]])
  }`;
const requirements = authorizationRequirements(sdl);
const schema = buildSchema(sdl, { assumeValid: true });

function user(permissions: string[]): Principal {
  return { ...anonymousPrincipal('acme'), kind: 'user', id: 'u1', permissions };
}

describe('principal key of the field guard cache', () => {
  it('a scope containing a space does not share a key with the scopes it splits into', () => {
    const spaced = user(['all read']);
    const pair = user(['read', 'all']);
    // They are decided differently, so a shared key would hand one the other's cached decision.
    const node = (name: string): FieldNode => ({ kind: Kind.FIELD, name: { kind: Kind.NAME, value: name } });
    const field = (name: string) => schema.getQueryType()!.getFields()[name]!;
    const denied = (principal: Principal, name: string) => authorizationCheck(requirements, principal)!(schema.getQueryType()!, field(name), node(name)) !== null;
    expect([denied(spaced, 'spaced'), denied(spaced, 'pair')]).toEqual([false, true]);
    expect([denied(pair, 'spaced'), denied(pair, 'pair')]).toEqual([true, false]);
    expect(principalKey(requirements, spaced)).not.toBe(principalKey(requirements, pair));
  });

  it('callers with the same relevant grants share a key, whatever else they hold', () => {
    expect(principalKey(requirements, user(['all', 'read', 'other']))).toBe(principalKey(requirements, user(['read', 'all'])));
  });
});
