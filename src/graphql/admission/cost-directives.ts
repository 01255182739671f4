import { Kind, parse, type DirectiveNode, type DocumentNode, type ValueNode } from 'graphql';
import { NO_COST_WEIGHTS, type CostWeights, type ListSizeRule } from '../operation-limits.js';

/**
 * Apollo's demand-control spec: subgraphs on federation 2.9+ import `@cost` / `@listSize` from the
 * federation link and composition carries them into the supergraph under this link.
 */
const COST_SPECS = ['specs.apollo.dev/cost/'];

/**
 * `@cost(weight:)` on fields and types and `@listSize` on fields, read from the supergraph so
 * weights live with the subgraph that knows them. Names follow the supergraph's `@link` (imported,
 * renamed with `as`, or namespaced `cost__listSize`). `@cost` on arguments is not read (arguments cost
 * nothing in our model).
 */
export function costDirectives(supergraphSdl: string | DocumentNode): CostWeights {
  const document = typeof supergraphSdl === 'string' ? parse(supergraphSdl) : supergraphSdl;
  const names = linkedNames(document);
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

/** The names `@cost` and `@listSize` have in this supergraph, or null when no cost spec is linked. */
function linkedNames(document: DocumentNode): { cost: string; listSize: string } | null {
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.SCHEMA_DEFINITION && definition.kind !== Kind.SCHEMA_EXTENSION) continue;
    for (const link of definition.directives ?? []) {
      const url = literal(argument(link, 'url'));
      if (link.name.value !== 'link' || typeof url !== 'string' || !COST_SPECS.some((spec) => url.includes(spec))) continue;
      // Core-schema naming: the directive named like the feature is `@<as>` (default `@cost`),
      // others are namespaced `<as>__listSize` unless imported.
      const as = literal(argument(link, 'as'));
      const namespace = typeof as === 'string' ? as : 'cost';
      const names = { cost: namespace, listSize: `${namespace}__listSize` };
      const imports = argument(link, 'import');
      for (const entry of imports?.kind === Kind.LIST ? imports.values : []) {
        if (entry.kind === Kind.STRING && entry.value === '@cost') names.cost = 'cost';
        if (entry.kind === Kind.STRING && entry.value === '@listSize') names.listSize = 'listSize';
        if (entry.kind === Kind.OBJECT) {
          const field = (key: string) => literal(entry.fields.find((f) => f.name.value === key)?.value);
          const imported = field('name');
          const alias = field('as');
          if (typeof alias !== 'string') continue;
          if (imported === '@cost') names.cost = alias.replace(/^@/, '');
          if (imported === '@listSize') names.listSize = alias.replace(/^@/, '');
        }
      }
      return names;
    }
  }
  return null;
}

function argument(directive: DirectiveNode, name: string): ValueNode | undefined {
  return directive.arguments?.find((a) => a.name.value === name)?.value;
}

function literal(value: ValueNode | undefined): unknown {
  if (!value) return undefined;
  if (value.kind === Kind.INT || value.kind === Kind.FLOAT) return Number(value.value);
  if (value.kind === Kind.STRING) return value.value;
  if (value.kind === Kind.LIST) return value.values.map(literal);
  return undefined;
}
