import { createHash } from 'node:crypto';
import type { ApolloServerPlugin } from '@apollo/server';
import {
  GraphQLError,
  Kind,
  getNamedType,
  isInterfaceType,
  isNonNullType,
  isObjectType,
  parse,
  print,
  visit,
  type DirectiveNode,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLCompositeType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionNode,
  type SelectionSetNode,
} from 'graphql';
import type { Principal } from '../auth/principal.js';
import type { GatewayContext } from '../context.js';

/**
 * Enforces the federation directives `@authenticated` and `@requiresScopes` at the gateway, with
 * Apollo Router's semantics: fields the caller may not see are removed from the operation before it
 * is planned (so no subgraph is asked for them), come back as `null`, and each gets an error with
 * `UNAUTHORIZED_FIELD_OR_TYPE`; the rest of the operation runs. Apollo Gateway ignores these
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
}

export const NO_REQUIREMENTS: AuthorizationRequirements = { types: new Map(), fields: new Map() };
const NONE = NO_REQUIREMENTS;

/** Reads the directives from the supergraph SDL (names follow its `@link(..., as:)` if renamed). */
export function authorizationRequirements(supergraphSdl: string): AuthorizationRequirements {
  const document = parse(supergraphSdl);
  const names = { authenticated: 'authenticated', requiresScopes: 'requiresScopes' };
  let linked = false;
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.SCHEMA_DEFINITION && definition.kind !== Kind.SCHEMA_EXTENSION) continue;
    for (const directive of definition.directives ?? []) {
      if (directive.name.value !== 'link') continue;
      const url = stringArgument(directive, 'url') ?? '';
      const as = stringArgument(directive, 'as');
      if (url.includes('specs.apollo.dev/authenticated/')) (linked = true), as && (names.authenticated = as);
      if (url.includes('specs.apollo.dev/requiresScopes/')) (linked = true), as && (names.requiresScopes = as);
    }
  }
  if (!linked) return NONE;

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
  for (const definition of document.definitions) {
    if (!('name' in definition) || !definition.name || !('directives' in definition)) continue;
    const typeName = definition.name.value;
    const own = requirementOf(definition.directives);
    if (own) types.set(typeName, merge(types.get(typeName), own));
    if ('fields' in definition) {
      for (const field of definition.fields ?? []) {
        const requirement = requirementOf(field.directives);
        if (requirement) fields.set(`${typeName}.${field.name.value}`, requirement);
      }
    }
  }
  return types.size + fields.size === 0 ? NONE : { types, fields };
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

/** One step of a response path: its key and whether the schema makes it non-null. */
interface PathStep {
  key: string;
  nonNull: boolean;
}

interface Removal {
  path: PathStep[];
  /** False for a parent dropped only because all its selections were removed. */
  reported: boolean;
}

interface FilterResult {
  document: DocumentNode;
  removals: Removal[];
  /** Every root field was removed: nothing is left to execute. */
  empty: boolean;
}

/** Removes what the principal may not see from the operation; null when nothing needs removing. */
export function filterOperation(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  requirements: AuthorizationRequirements,
  principal: Principal,
): FilterResult | null {
  const rootType = schema.getRootType(operation.operation);
  if (!rootType) return null;
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  const grants = new Set([...principal.permissions, ...principal.roles]);
  const removals: Removal[] = [];

  const filterSelections = (selectionSet: SelectionSetNode, parent: GraphQLCompositeType, path: PathStep[]): SelectionSetNode | null => {
    const kept: SelectionNode[] = [];
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) {
        const field = filterField(selection, parent, path);
        if (field) kept.push(field);
        continue;
      }
      // Fragments are inlined so that what one caller may see never changes a shared fragment.
      const fragment = selection.kind === Kind.FRAGMENT_SPREAD ? fragments.get(selection.name.value) : selection;
      if (!fragment) continue;
      const condition = fragment.typeCondition ? schema.getType(fragment.typeCondition.name.value) : parent;
      if (!condition || !('getFields' in condition || 'getTypes' in condition)) continue;
      const inner = filterSelections(fragment.selectionSet, condition as GraphQLCompositeType, path);
      if (inner) {
        kept.push({
          kind: Kind.INLINE_FRAGMENT,
          typeCondition: fragment.typeCondition,
          directives: selection.directives,
          selectionSet: inner,
        });
      }
    }
    return kept.length > 0 ? { ...selectionSet, selections: kept } : null;
  };

  const filterField = (node: FieldNode, parent: GraphQLCompositeType, path: PathStep[]): FieldNode | null => {
    const name = node.name.value;
    if (name.startsWith('__') || !(isObjectType(parent) || isInterfaceType(parent))) return node;
    const definition = parent.getFields()[name];
    if (!definition) return node;
    const named = getNamedType(definition.type);
    const step: PathStep[] = [...path, { key: node.alias?.value ?? name, nonNull: isNonNullType(definition.type) }];
    if (
      !allows(requirements.fields.get(`${parent.name}.${name}`), principal, grants) ||
      !allows(requirements.types.get(named.name), principal, grants)
    ) {
      removals.push({ path: step, reported: true });
      return null;
    }
    if (!node.selectionSet) return node;
    const inner = filterSelections(node.selectionSet, named as GraphQLCompositeType, step);
    if (!inner) {
      removals.push({ path: step, reported: false });
      return null;
    }
    return inner === node.selectionSet ? node : { ...node, selectionSet: inner };
  };

  const selectionSet = filterSelections(operation.selectionSet, rootType, []);
  if (removals.length === 0) return null;
  const filtered: OperationDefinitionNode = {
    ...operation,
    selectionSet: selectionSet ?? { kind: Kind.SELECTION_SET, selections: [] },
  };
  return { document: { kind: Kind.DOCUMENT, definitions: [filtered] }, removals, empty: selectionSet === null };
}

/** Writes `null` where removed fields would have been, bubbling through non-null fields like GraphQL does. */
export function applyRemovals(data: Record<string, unknown> | null, removals: readonly Removal[]): Record<string, unknown> | null {
  if (!data) return data;
  let root: Record<string, unknown> | null = data;
  for (const { path } of removals) {
    // `nullAt` returns true when the null bubbled up past the root: the whole data becomes null.
    if (root && nullAt(root, path, 0)) root = null;
  }
  return root;
}

function nullAt(container: unknown, path: PathStep[], index: number): boolean {
  if (Array.isArray(container)) {
    let bubbled = false;
    for (const item of container) bubbled = nullAt(item, path, index) || bubbled;
    return bubbled;
  }
  if (container === null || typeof container !== 'object') return false;
  const object = container as Record<string, unknown>;
  const step = path[index]!;
  if (index === path.length - 1) {
    object[step.key] = null;
    return step.nonNull;
  }
  if (!(step.key in object) || object[step.key] === null) return false;
  const childBubbled = nullAt(object[step.key], path, index + 1);
  if (!childBubbled) return false;
  object[step.key] = null;
  return step.nonNull;
}

/** The Apollo Server plugin; `requirements()` returns what the current supergraph declares. */
export function fieldAuthorization(requirements: () => AuthorizationRequirements): ApolloServerPlugin<GatewayContext> {
  return {
    async requestDidStart() {
      let removals: Removal[] = [];
      let empty = false;
      return {
        async didResolveOperation(requestContext) {
          const current = requirements();
          if (current === NONE || !requestContext.operation) return;
          const result = filterOperation(
            requestContext.schema,
            requestContext.document,
            requestContext.operation,
            current,
            requestContext.contextValue.principal,
          );
          if (!result) return;
          removals = result.removals;
          empty = result.empty;
          // Apollo Gateway plans `document` and caches plans by `queryHash`: both must describe
          // what this caller may see, or another caller's cached plan could be reused.
          const mutable = requestContext as { document: DocumentNode; queryHash: string };
          mutable.document = result.document;
          mutable.queryHash = createHash('sha256').update(print(result.document)).digest('hex');
        },
        async responseForOperation(requestContext) {
          // Nothing the caller may see is left: answer without planning or calling any subgraph.
          if (!empty) return null;
          return { http: requestContext.response.http, body: { kind: 'single', singleResult: { data: {} } } };
        },
        async willSendResponse({ response }) {
          if (removals.length === 0 || response.body.kind !== 'single') return;
          const result = response.body.singleResult;
          // Refused before execution (limits, read-only, …): nothing was removed from a result.
          if (result.data === undefined) return;
          result.data = applyRemovals((result.data ?? null) as Record<string, unknown> | null, removals);
          const denied = removals
            .filter((removal) => removal.reported)
            .map(
              (removal) =>
                new GraphQLError('Unauthorized field or type', {
                  path: removal.path.map((step) => step.key),
                  extensions: { code: 'UNAUTHORIZED_FIELD_OR_TYPE' },
                }).toJSON(),
            );
          result.errors = [...denied, ...(result.errors ?? [])];
        },
      };
    },
  };
}

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
