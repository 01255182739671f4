import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { composeServices } from '@apollo/composition';
import { Supergraph } from '@apollo/federation-internals';
import { findBreakingChanges, parse, Source, type GraphQLError } from 'graphql';
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

/** Changes that break existing clients of the public (API) schema: removed fields, changed types… */
export function breakingChanges(previousSupergraphSdl: string, nextSupergraphSdl: string): string[] {
  const apiSchema = (sdl: string) => Supergraph.build(withoutAuthorizationDirectives(sdl)).apiSchema().toGraphQLJSSchema();
  return findBreakingChanges(apiSchema(previousSupergraphSdl), apiSchema(nextSupergraphSdl)).map(
    (change) => `${change.type}: ${change.description}`,
  );
}

function toIssue(error: GraphQLError): CompositionIssue {
  const subgraphs = new Set<string>();
  for (const node of error.nodes ?? []) {
    const name = node.loc?.source.name;
    if (name && name !== 'GraphQL request') subgraphs.add(name);
  }
  return { code: String(error.extensions.code ?? 'COMPOSITION_ERROR'), message: error.message, subgraphs: [...subgraphs] };
}
