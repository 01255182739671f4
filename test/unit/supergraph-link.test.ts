import { parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { linkedDirectiveNames } from '../../src/graphql/admission/supergraph-link.js';

const schema = (links: string) => parse(`schema @link(url: "https://specs.apollo.dev/link/v1.0") ${links} { query: Query }\ntype Query { a: Int }`);

describe('directive names from a supergraph @link', () => {
  it('the feature-named directive takes `as`, the others are namespaced, imports win', () => {
    const document = schema('@link(url: "https://specs.apollo.dev/cost/v0.1", as: "dc", import: [{ name: "@listSize", as: "@size" }])');
    expect(linkedDirectiveNames(document, 'cost', ['cost', 'listSize'])).toEqual({ cost: 'dc', listSize: 'size' });
    expect(linkedDirectiveNames(schema('@link(url: "https://x.dev/rate-limit/v1.0")'), 'rate-limit', ['rateLimit'])).toEqual({ rateLimit: 'rate-limit__rateLimit' });
    expect(linkedDirectiveNames(schema('@link(url: "https://x.dev/rate-limit/v1.0", import: ["@rateLimit"])'), 'rate-limit', ['rateLimit'])).toEqual({ rateLimit: 'rateLimit' });
  });

  it('null when the feature is not linked', () => {
    expect(linkedDirectiveNames(schema('@link(url: "https://specs.apollo.dev/authenticated/v0.1")'), 'requiresScopes', ['requiresScopes'])).toBeNull();
  });
});
