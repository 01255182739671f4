import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { describe, expect, it } from 'vitest';
import { maskUnexpectedErrors } from '../../src/graphql/endpoint.js';

/** What Apollo Server hands formatError: its formatted error (code defaulted) and the original. */
function formatted(error: GraphQLError): GraphQLFormattedError {
  const { http: _http, ...extensions } = error.extensions;
  return { ...error.toJSON(), extensions: { ...extensions, code: extensions.code ?? 'INTERNAL_SERVER_ERROR' } };
}

function capture() {
  const logged: { level: 'debug' | 'error'; object: unknown; msg: string }[] = [];
  const logger = {
    debug: (object: unknown, msg: string) => void logged.push({ level: 'debug', object, msg }),
    error: (object: unknown, msg: string) => void logged.push({ level: 'error', object, msg }),
  };
  return { logged, format: maskUnexpectedErrors(logger as never) };
}

describe('GraphQL error masking', () => {
  it("Apollo's uncoded 4xx refusals (APQ hash mismatch, bad version) become BAD_REQUEST, logged at debug", () => {
    const { logged, format } = capture();
    for (const message of ['provided sha does not match query', 'Unsupported persisted query version']) {
      const error = new GraphQLError(message, { extensions: { http: { status: 400, headers: new Map() } } });
      expect(format(formatted(error), error)).toEqual({ message, extensions: { code: 'BAD_REQUEST' } });
    }
    expect(logged.map((line) => line.level)).toEqual(['debug', 'debug']);
  });

  it('a real unexpected error stays masked and is logged at error with its cause', () => {
    const { logged, format } = capture();
    const cause = new Error('connection string postgres://secret@db leaked');
    const error = new GraphQLError(cause.message, { originalError: cause, path: ['products'] });
    expect(format(formatted(error), error)).toEqual({ message: 'Internal server error', path: ['products'], extensions: { code: 'INTERNAL_SERVER_ERROR' } });
    expect(logged).toEqual([{ level: 'error', object: { err: cause }, msg: 'unexpected error while executing a GraphQL operation' }]);
  });

  it('a 5xx without a code is still unexpected; coded and subgraph errors pass unchanged', () => {
    const { logged, format } = capture();
    const serverSide = new GraphQLError('boom', { extensions: { http: { status: 503 } } });
    expect(format(formatted(serverSide), serverSide).extensions?.code).toBe('INTERNAL_SERVER_ERROR');
    expect(format(formatted(serverSide), serverSide).message).toBe('Internal server error');
    const coded = new GraphQLError('Syntax Error', { extensions: { code: 'GRAPHQL_PARSE_FAILED', http: { status: 400 } } });
    expect(format(formatted(coded), coded)).toEqual(formatted(coded));
    const subgraph: GraphQLFormattedError = { message: 'x', extensions: { code: 'INTERNAL_SERVER_ERROR', serviceName: 'catalog' } };
    expect(format(subgraph, new GraphQLError('x'))).toBe(subgraph);
    expect(logged.map((line) => line.level)).toEqual(['error', 'error']);
  });
});
