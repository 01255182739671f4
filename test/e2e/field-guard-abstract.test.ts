import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SubgraphDefinition } from '../../subgraphs/shared/server.js';
import { postGraphQL, startStack, type Stack } from '../helpers/stack.js';

/** Users and posts behind a union and an interface; `Post.title` is `@authenticated`. */
function mediaSubgraph(): SubgraphDefinition {
  const user = { __typename: 'User', id: 'u1', title: 'Dr' };
  const post = { __typename: 'Post', id: 'p1', title: 'Secret plans' };
  const typed = { __resolveType: (value: { __typename: string }) => value.__typename };
  return {
    name: 'media',
    schemaFile: new URL('../fixtures/media.graphql', import.meta.url),
    resolvers: {
      Query: {
        search: (_: unknown, { withPosts }: { withPosts?: boolean | null }) => (withPosts ? [user, post] : [user]),
        feed: () => [user, post],
      },
      Result: typed,
      Node: typed,
    },
  };
}

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ definitions: [mediaSubgraph()], env: { DEFAULT_TENANT_ID: 'acme' } });
});
afterAll(() => stack.close());

type Body = { data?: Record<string, unknown> | null; errors?: { path?: (string | number)[]; extensions?: { code?: string } }[] };

describe('a denied field under a union or interface, for an anonymous caller', () => {
  it('union: User items keep their title; the client never sees the type the guard asked for', async () => {
    const { body } = await postGraphQL(stack.url, { query: '{ search { ... on User { id title } ... on Post { id title } } }' });
    const { data, errors } = body as Body;
    expect(data).toEqual({ search: [{ id: 'u1', title: 'Dr' }] });
    expect(errors?.map((e) => e.extensions?.code)).toEqual(['UNAUTHORIZED_FIELD_OR_TYPE']);
  });

  it('union: a Post item loses its non-null title and the null bubbles through [Result!]!', async () => {
    const { body } = await postGraphQL(stack.url, { query: '{ search(withPosts: true) { ... on User { id title } ... on Post { id title } } }' });
    const { data, errors } = body as Body;
    expect(data).toBeNull();
    expect(errors?.map((e) => e.path)).toEqual([['search', 1, 'title']]);
  });

  it('interface: only the Post item of [Node] is nulled, and a __typename the client asked for stays', async () => {
    const { body } = await postGraphQL(stack.url, { query: '{ feed { __typename id ... on User { title } ... on Post { title } } }' });
    const { data, errors } = body as Body;
    expect(data).toEqual({ feed: [{ __typename: 'User', id: 'u1', title: 'Dr' }, null] });
    expect(errors?.map((e) => [e.path, e.extensions?.code])).toEqual([[['feed', 1, 'title'], 'UNAUTHORIZED_FIELD_OR_TYPE']]);
  });
});
