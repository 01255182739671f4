import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { composeServices } from '@apollo/composition';
import { Supergraph } from '@apollo/federation-internals';
import {
  findBreakingChanges,
  parse,
  Source,
  type BreakingChange as GraphQLBreakingChange,
  type BreakingChangeType,
  type GraphQLError,
  type GraphQLSchema,
} from 'graphql';
import { parse as parseYaml } from 'yaml';
import { withoutAuthorizationDirectives } from '../graphql/field-authorization.js';
import { z } from 'zod';

const compositionConfigSchema = z.strictObject({
  federation_version: z.literal(2).optional(),
  subgraphs: z.record(
    z.string().regex(/^[A-Za-z][A-Za-z0-9_-]*$/),
    z.strictObject({ routing_url: z.url(), schema: z.string().min(1) }),
  ),
});

export interface CompositionIssue {
  code: string;
  message: string;
  subgraphs: string[];
}

export type CompositionOutcome =
  | { ok: true; supergraphSdl: string; hints: number }
  | { ok: false; errors: CompositionIssue[] };

/** Composes the subgraphs listed in a composition config (paths relative to that file). */
export function composeFromConfig(configPath: string): CompositionOutcome {
  const config = compositionConfigSchema.parse(parseYaml(readFileSync(configPath, 'utf8')));
  const base = dirname(resolve(configPath));
  return composeSubgraphs(
    Object.entries(config.subgraphs).map(([name, { routing_url, schema }]) => ({
      name,
      url: routing_url,
      sdl: readFileSync(resolve(base, schema), 'utf8'),
    })),
  );
}

export interface SubgraphSource {
  name: string;
  url: string;
  sdl: string;
}

export function composeSubgraphs(subgraphs: readonly SubgraphSource[]): CompositionOutcome {
  const result = composeServices(
    subgraphs.map(({ name, url, sdl }) => ({
      name,
      url,
      // Naming the source after the subgraph lets every error say which subgraph it comes from.
      typeDefs: parse(new Source(sdl, name)),
    })),
  );
  if (result.errors) return { ok: false, errors: result.errors.map(toIssue) };
  return { ok: true, supergraphSdl: result.supergraphSdl, hints: result.hints.length };
}

/** A change that breaks existing clients, with the schema coordinate it concerns (e.g. `Query.search`). */
export interface BreakingChange {
  type: BreakingChangeType;
  /** Schema coordinate: `Type`, `Type.field`, `Type.field(arg:)`, `Enum.VALUE`, `@directive`, `@directive(arg:)`. */
  coordinate: string;
  description: string;
}

/** Changes that break existing clients of the public (API) schema: removed fields, changed types… */
export function breakingChanges(previousSupergraphSdl: string, nextSupergraphSdl: string): BreakingChange[] {
  return schemaBreakingChanges(apiSchema(previousSupergraphSdl), apiSchema(nextSupergraphSdl));
}

/** The same for two GraphQL schemas (graphql-js `findBreakingChanges`), each change with its coordinate. */
export function schemaBreakingChanges(previous: GraphQLSchema, next: GraphQLSchema): BreakingChange[] {
  return findBreakingChanges(previous, next).map(withCoordinate);
}

/** One line per change, naming its coordinate first so CI logs can be scanned for it. */
export function formatBreakingChange({ type, coordinate, description }: BreakingChange): string {
  return `${coordinate} (${type}): ${description}`;
}

function apiSchema(supergraphSdl: string): GraphQLSchema {
  return Supergraph.build(withoutAuthorizationDirectives(supergraphSdl)).apiSchema().toGraphQLJSSchema();
}

/**
 * graphql-js only describes each change in prose; these patterns (one per change type, matching
 * graphql 16's wording) recover the coordinate. The Record makes a new change type a compile error.
 */
const coordinatePatterns: Record<BreakingChangeType, { pattern: RegExp; coordinate: (...names: string[]) => string }> = {
  TYPE_REMOVED: { pattern: /^(?:Standard scalar )?(\w+) was removed/, coordinate: (type) => type },
  TYPE_CHANGED_KIND: { pattern: /^(\w+) changed from /, coordinate: (type) => type },
  TYPE_REMOVED_FROM_UNION: { pattern: /^(\w+) was removed from union type (\w+)\./, coordinate: (_member, union) => union },
  VALUE_REMOVED_FROM_ENUM: { pattern: /^(\w+) was removed from enum type (\w+)\./, coordinate: (value, type) => `${type}.${value}` },
  REQUIRED_INPUT_FIELD_ADDED: {
    pattern: /^A required field (\w+) on input type (\w+) was added\./,
    coordinate: (field, type) => `${type}.${field}`,
  },
  IMPLEMENTED_INTERFACE_REMOVED: { pattern: /^(\w+) no longer implements interface (\w+)\./, coordinate: (type) => type },
  FIELD_REMOVED: { pattern: /^(\w+\.\w+) was removed\./, coordinate: (field) => field },
  FIELD_CHANGED_KIND: { pattern: /^(\w+\.\w+) changed type from /, coordinate: (field) => field },
  REQUIRED_ARG_ADDED: { pattern: /^A required arg (\w+) on (\w+\.\w+) was added\./, coordinate: (arg, field) => `${field}(${arg}:)` },
  ARG_REMOVED: { pattern: /^(\w+\.\w+) arg (\w+) was removed\./, coordinate: (field, arg) => `${field}(${arg}:)` },
  ARG_CHANGED_KIND: { pattern: /^(\w+\.\w+) arg (\w+) has changed type from /, coordinate: (field, arg) => `${field}(${arg}:)` },
  DIRECTIVE_REMOVED: { pattern: /^(\w+) was removed\./, coordinate: (directive) => `@${directive}` },
  DIRECTIVE_ARG_REMOVED: { pattern: /^(\w+) was removed from (\w+)\./, coordinate: (arg, directive) => `@${directive}(${arg}:)` },
  REQUIRED_DIRECTIVE_ARG_ADDED: {
    pattern: /^A required arg (\w+) on directive (\w+) was added\./,
    coordinate: (arg, directive) => `@${directive}(${arg}:)`,
  },
  DIRECTIVE_REPEATABLE_REMOVED: { pattern: /^Repeatable flag was removed from (\w+)\./, coordinate: (directive) => `@${directive}` },
  DIRECTIVE_LOCATION_REMOVED: { pattern: /^\w+ was removed from (\w+)\./, coordinate: (directive) => `@${directive}` },
};

function withCoordinate({ type, description }: GraphQLBreakingChange): BreakingChange {
  const { pattern, coordinate } = coordinatePatterns[type];
  const names = pattern.exec(description)?.slice(1);
  // Should graphql-js reword a description, the change is still reported, under its own text.
  return { type, coordinate: names ? coordinate(...names) : description, description };
}

function toIssue(error: GraphQLError): CompositionIssue {
  const subgraphs = new Set<string>();
  for (const node of error.nodes ?? []) {
    const name = node.loc?.source.name;
    if (name && name !== 'GraphQL request') subgraphs.add(name);
  }
  return { code: String(error.extensions.code ?? 'COMPOSITION_ERROR'), message: error.message, subgraphs: [...subgraphs] };
}
