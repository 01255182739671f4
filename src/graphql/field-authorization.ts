import { Kind, getNamedType, parse, print, visit, type DirectiveNode } from 'graphql';
import type { Principal } from '../auth/principal.js';
import type { Denial, FieldCheck } from './field-guard.js';
import { linkedDirectiveNames } from './admission/supergraph-link.js';

/**
 * The federation directives `@authenticated` and `@requiresScopes`, enforced at the gateway with
 * Apollo Router's semantics (through the field guard): fields the caller may not see are removed
 * from the operation before it is planned, come back as `null`, and each gets an error with
 * `UNAUTHORIZED_FIELD_OR_TYPE`; the rest of the operation runs. Apollo Gateway cannot load these
 * directives and no maintained library enforces them for it, hence this module.
 *
 * Scopes are matched against the caller's permissions and roles. `@requiresScopes(scopes: [[a, b], [c]])`
 * means (a AND b) OR c; several requirements on one path (field and its type) must all hold.
 */

interface Requirement {
  authenticated: boolean;
  /** Each entry is one `@requiresScopes` argument: OR of AND-groups. All entries must hold. */
  scopes: string[][][];
}

export interface AuthorizationRequirements {
  readonly types: ReadonlyMap<string, Requirement>;
  readonly fields: ReadonlyMap<string, Requirement>;
  /** Every scope any requirement names: only these of a caller's grants can change a decision. */
  readonly scopes: ReadonlySet<string>;
}

export const NO_REQUIREMENTS: AuthorizationRequirements = { types: new Map(), fields: new Map(), scopes: new Set() };
const NONE = NO_REQUIREMENTS;

/** Reads the directives from the supergraph SDL (names follow its `@link(..., as:)` if renamed). */
export function authorizationRequirements(supergraphSdl: string): AuthorizationRequirements {
  const document = parse(supergraphSdl);
  const authenticated = linkedDirectiveNames(document, 'authenticated', ['authenticated']);
  const requiresScopes = linkedDirectiveNames(document, 'requiresScopes', ['requiresScopes']);
  if (!authenticated && !requiresScopes) return NONE;
  const names = { authenticated: authenticated?.authenticated ?? 'authenticated', requiresScopes: requiresScopes?.requiresScopes ?? 'requiresScopes' };

  const types = new Map<string, Requirement>();
  const fields = new Map<string, Requirement>();
  const requirementOf = (directives: readonly DirectiveNode[] | undefined): Requirement | null => {
    let requirement: Requirement | null = null;
    for (const directive of directives ?? []) {
      if (directive.name.value === names.authenticated) {
        requirement ??= { authenticated: false, scopes: [] };
        requirement.authenticated = true;
      }
      if (directive.name.value === names.requiresScopes) {
        requirement ??= { authenticated: false, scopes: [] };
        requirement.scopes.push(scopeArgument(directive));
      }
    }
    return requirement;
  };
  // Interface name → the types declaring it (GraphQL requires transitive interfaces to be declared too).
  const implementations = new Map<string, string[]>();
  for (const definition of document.definitions) {
    if (!('name' in definition) || !definition.name || !('directives' in definition)) continue;
    const typeName = definition.name.value;
    const own = requirementOf(definition.directives);
    if (own) types.set(typeName, merge(types.get(typeName), own));
    if ('interfaces' in definition) {
      for (const implemented of definition.interfaces ?? []) {
        implementations.set(implemented.name.value, [...(implementations.get(implemented.name.value) ?? []), typeName]);
      }
    }
    if ('fields' in definition) {
      for (const field of definition.fields ?? []) {
        const requirement = requirementOf(field.directives);
        if (requirement) fields.set(`${typeName}.${field.name.value}`, merge(fields.get(`${typeName}.${field.name.value}`), requirement));
      }
    }
  }
  // A requirement on an interface field holds for every implementation of that field, so a fragment
  // on the concrete type cannot reach what the interface protects.
  for (const [key, requirement] of [...fields]) {
    const [typeName, fieldName] = key.split('.') as [string, string];
    for (const implementation of implementations.get(typeName) ?? []) {
      const implementationKey = `${implementation}.${fieldName}`;
      fields.set(implementationKey, merge(fields.get(implementationKey), requirement));
    }
  }
  const scopes = new Set<string>();
  for (const requirement of [...types.values(), ...fields.values()]) {
    for (const alternatives of requirement.scopes) for (const group of alternatives) for (const scope of group) scopes.add(scope);
  }
  return types.size + fields.size === 0 ? NONE : { types, fields, scopes };
}

function merge(a: Requirement | undefined, b: Requirement): Requirement {
  return a ? { authenticated: a.authenticated || b.authenticated, scopes: [...a.scopes, ...b.scopes] } : b;
}

function stringArgument(directive: DirectiveNode, name: string): string | undefined {
  const argument = directive.arguments?.find((a) => a.name.value === name);
  return argument?.value.kind === Kind.STRING ? argument.value.value : undefined;
}

function scopeArgument(directive: DirectiveNode): string[][] {
  const argument = directive.arguments?.find((a) => a.name.value === 'scopes');
  if (argument?.value.kind !== Kind.LIST) return [];
  return argument.value.values.map((group) =>
    group.kind === Kind.LIST ? group.values.flatMap((v) => (v.kind === Kind.STRING ? [v.value] : [])) : [],
  );
}

function allows(requirement: Requirement | undefined, principal: Principal, grants: ReadonlySet<string>): boolean {
  if (!requirement) return true;
  if (requirement.authenticated && principal.kind === 'anonymous') return false;
  return requirement.scopes.every((alternatives) => alternatives.some((group) => group.every((s) => grants.has(s))));
}

/**
 * What of the principal these requirements can see: authenticated or not, and the grants they name.
 * Two principals with the same key get the same decision for every field, so the field guard's walk
 * is cached by document and this key.
 */
export function principalKey(requirements: AuthorizationRequirements, principal: Principal): string {
  if (requirements === NONE) return '';
  const relevant: string[] = [];
  for (const grant of principal.permissions) if (requirements.scopes.has(grant)) relevant.push(grant);
  for (const grant of principal.roles) if (requirements.scopes.has(grant)) relevant.push(grant);
  // JSON keeps grants apart: joined with a space, a scope `a b` would share the key of scopes `a` and `b`.
  return `${principal.kind === 'anonymous' ? 'a' : 'u'}|${JSON.stringify([...new Set(relevant)].sort())}`;
}

/** The field guard's check for these directives: why a field is denied to this principal, or null. */
export function authorizationCheck(requirements: AuthorizationRequirements, principal: Principal): FieldCheck | null {
  if (requirements === NONE) return null;
  const grants = new Set([...principal.permissions, ...principal.roles]);
  // The field's own requirement, its parent type's (reached directly or through a fragment on that
  // type under an interface or union) and its result type's must all hold.
  return (parent, field) =>
    allows(requirements.fields.get(`${parent.name}.${field.name}`), principal, grants) &&
    allows(requirements.types.get(parent.name), principal, grants) &&
    allows(requirements.types.get(getNamedType(field.type).name), principal, grants)
      ? null
      : UNAUTHORIZED;
}

const UNAUTHORIZED: Denial = { code: 'UNAUTHORIZED_FIELD_OR_TYPE', message: 'Unauthorized field or type' };

const SECURITY_SPECS = ['specs.apollo.dev/authenticated/', 'specs.apollo.dev/requiresScopes/'];

/**
 * Apollo Gateway refuses supergraphs that link `for: SECURITY` features it does not implement, which
 * includes `@authenticated` and `@requiresScopes`. We enforce them ourselves (above), so the gateway
 * gets the supergraph without them: the links, their definitions and every usage removed.
 */
export function withoutAuthorizationDirectives(supergraphSdl: string): string {
  const document = parse(supergraphSdl);
  const names = new Set<string>();
  const prefixes: string[] = [];
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.SCHEMA_DEFINITION && definition.kind !== Kind.SCHEMA_EXTENSION) continue;
    for (const directive of definition.directives ?? []) {
      const url = directive.name.value === 'link' ? stringArgument(directive, 'url') : undefined;
      if (!url || !SECURITY_SPECS.some((spec) => url.includes(spec))) continue;
      const name = stringArgument(directive, 'as') ?? (url.includes('requiresScopes') ? 'requiresScopes' : 'authenticated');
      names.add(name);
      prefixes.push(`${name}__`);
    }
  }
  if (names.size === 0) return supergraphSdl;
  const isSecurityLink = (directive: DirectiveNode) =>
    directive.name.value === 'link' && SECURITY_SPECS.some((spec) => (stringArgument(directive, 'url') ?? '').includes(spec));
  const stripped = visit(document, {
    Directive: (node) => (names.has(node.name.value) || isSecurityLink(node) ? null : undefined),
    DirectiveDefinition: (node) => (names.has(node.name.value) ? null : undefined),
    ScalarTypeDefinition: (node) => (prefixes.some((p) => node.name.value.startsWith(p)) ? null : undefined),
  });
  return print(stripped);
}
