import { Kind, parse, type DirectiveNode, type DocumentNode } from 'graphql';
import { NO_COST_WEIGHTS, type CostWeights, type ListSizeRule } from '../operation-limits.js';
import { argument, linkedDirectiveNames, literal } from './supergraph-link.js';

/**
 * `@cost(weight:)` on fields and types and `@listSize` on fields, read from the supergraph so
 * weights live with the subgraph that knows them. Names follow the supergraph's `@link` (imported,
 * renamed with `as`, or namespaced `cost__listSize`). `@cost` on arguments is not read (arguments cost
 * nothing in our model).
 */
export function costDirectives(supergraphSdl: string | DocumentNode): CostWeights {
  const document = typeof supergraphSdl === 'string' ? parse(supergraphSdl) : supergraphSdl;
  // Apollo's demand-control spec: subgraphs on federation 2.9+ import `@cost` / `@listSize` from the
  // federation link and composition carries them into the supergraph under the `cost` link.
  const names = linkedDirectiveNames(document, 'cost', ['cost', 'listSize']);
  if (!names) return NO_COST_WEIGHTS;
  const fields = new Map<string, number>();
  const types = new Map<string, number>();
  const listSizes = new Map<string, ListSizeRule>();
  const weightOf = (directives: readonly DirectiveNode[] | undefined): number | undefined => {
    const directive = directives?.find((d) => d.name.value === names.cost);
    const weight = directive ? literal(argument(directive, 'weight')) : undefined;
    return typeof weight === 'number' && weight >= 0 ? weight : undefined;
  };
  for (const definition of document.definitions) {
    if (!('name' in definition) || !definition.name || !('directives' in definition)) continue;
    const typeName = definition.name.value;
    const typeWeight = weightOf(definition.directives);
    if (typeWeight !== undefined) types.set(typeName, typeWeight);
    if (!('fields' in definition) || definition.kind === Kind.INPUT_OBJECT_TYPE_DEFINITION) continue;
    for (const field of definition.fields ?? []) {
      const key = `${typeName}.${field.name.value}`;
      const weight = weightOf(field.directives);
      if (weight !== undefined) fields.set(key, weight);
      const listSize = field.directives?.find((d) => d.name.value === names.listSize);
      if (listSize) listSizes.set(key, listSizeRule(listSize));
    }
  }
  return fields.size + types.size + listSizes.size === 0 ? NO_COST_WEIGHTS : { fields, types, listSizes };
}

function listSizeRule(directive: DirectiveNode): ListSizeRule {
  const assumedSize = literal(argument(directive, 'assumedSize'));
  const slicingArguments = literal(argument(directive, 'slicingArguments'));
  const sizedFields = literal(argument(directive, 'sizedFields'));
  const strings = (value: unknown) => (Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : undefined);
  return {
    ...(typeof assumedSize === 'number' && assumedSize >= 0 ? { assumedSize } : {}),
    ...(strings(slicingArguments) ? { slicingArguments: strings(slicingArguments) } : {}),
    ...(strings(sizedFields) ? { sizedFields: strings(sizedFields) } : {}),
  };
}
