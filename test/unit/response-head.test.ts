import { describe, expect, it } from 'vitest';
import { responseHead } from '../../src/rest/response-head.js';

/** The flat list as name → values, to compare without caring about order within the gateway's or the upstream's part. */
function fields(head: string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (let i = 0; i < head.length; i += 2) (out[head[i]!] ??= []).push(head[i + 1]!);
  return out;
}

describe('responseHead', () => {
  it("keeps the gateway's value where both set a field, and every upstream field the gateway does not own", () => {
    const head = responseHead(
      { 'x-frame-options': 'SAMEORIGIN', 'x-request-id': 'gw-1', 'x-ratelimit-remaining': 9 },
      { 'x-frame-options': 'ALLOWALL', 'x-request-id': 'up-1', 'content-type': 'text/plain', 'set-cookie': ['a=1', 'b=2'] },
      false,
    );
    expect(fields(head)).toEqual({
      'x-frame-options': ['SAMEORIGIN'],
      'x-request-id': ['gw-1'],
      'x-ratelimit-remaining': ['9'],
      'content-type': ['text/plain'],
      'set-cookie': ['a=1', 'b=2'],
    });
  });

  it('drops hop-by-hop fields and those the upstream names in Connection', () => {
    const head = responseHead(
      {},
      { connection: 'x-internal', 'x-internal': 'secret', 'keep-alive': 'timeout=5', 'transfer-encoding': 'chunked', trailer: 'x-t', etag: '"1"' },
      false,
    );
    expect(fields(head)).toEqual({ etag: ['"1"'] });
  });

  it('merges Vary (each member once, case-insensitively; * alone wins)', () => {
    expect(fields(responseHead({ vary: 'Origin' }, { vary: 'Accept-Encoding, origin' }, false)).vary).toEqual(['Origin, Accept-Encoding']);
    expect(fields(responseHead({ vary: 'Origin' }, { vary: '*' }, false)).vary).toEqual(['*']);
    expect(fields(responseHead({ vary: 'Origin' }, {}, false)).vary).toEqual(['Origin']);
    expect(fields(responseHead({}, { vary: 'Accept' }, false)).vary).toEqual(['Accept']);
  });

  it('closes the connection when the request body was not read, unless the gateway already decided', () => {
    expect(fields(responseHead({}, {}, true)).connection).toEqual(['close']);
    expect(fields(responseHead({ connection: 'close' }, {}, true)).connection).toEqual(['close']);
    expect(fields(responseHead({}, {}, false)).connection).toBeUndefined();
  });
});
