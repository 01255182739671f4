import { Kind, type DirectiveNode, type DocumentNode, type ValueNode } from 'graphql';

/**
 * The names the directives of one linked spec have in a supergraph, following core-schema naming:
 * the directive named like the feature is `@<as>` (default: the feature name), the others are
 * namespaced `<as>__<name>`, unless imported (`import: ["@x"]`, or `{ name: "@x", as: "@y" }`).
 * `feature` is the spec's name as its URL spells it (`https://specs.apollo.dev/<feature>/v0.1`).
 * Null when no `@link` names that feature. Apollo's own implementation lives in
 * @apollo/federation-internals, which the gateway does not otherwise load, so this small one is ours.
 */
export function linkedDirectiveNames<Name extends string>(document: DocumentNode, feature: string, directives: readonly Name[]): Record<Name, string> | null {
  const marker = `/${feature}/`;
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.SCHEMA_DEFINITION && definition.kind !== Kind.SCHEMA_EXTENSION) continue;
    for (const link of definition.directives ?? []) {
      const url = literal(argument(link, 'url'));
      if (link.name.value !== 'link' || typeof url !== 'string' || !url.includes(marker)) continue;
      const as = literal(argument(link, 'as'));
      const namespace = typeof as === 'string' ? as : feature;
      const names = {} as Record<Name, string>;
      for (const name of directives) names[name] = name === feature ? namespace : `${namespace}__${name}`;
      const imports = argument(link, 'import');
      for (const entry of imports?.kind === Kind.LIST ? imports.values : []) {
        const field = (key: string) => (entry.kind === Kind.OBJECT ? literal(entry.fields.find((f) => f.name.value === key)?.value) : undefined);
        const imported = entry.kind === Kind.STRING ? entry.value : field('name');
        const alias = entry.kind === Kind.STRING ? entry.value : field('as');
        if (typeof imported !== 'string' || typeof alias !== 'string') continue;
        const name = directives.find((d) => `@${d}` === imported);
        if (name) names[name] = alias.replace(/^@/, '');
      }
      return names;
    }
  }
  return null;
}

export function argument(directive: DirectiveNode, name: string): ValueNode | undefined {
  return directive.arguments?.find((a) => a.name.value === name)?.value;
}

/** A directive argument's literal: numbers, strings and lists of them; anything else is undefined. */
export function literal(value: ValueNode | undefined): unknown {
  if (!value) return undefined;
  if (value.kind === Kind.INT || value.kind === Kind.FLOAT) return Number(value.value);
  if (value.kind === Kind.STRING) return value.value;
  if (value.kind === Kind.LIST) return value.values.map(literal);
  return undefined;
}
