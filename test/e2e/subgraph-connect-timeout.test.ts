import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SubgraphHttpClient, SubgraphTransportError } from '../../src/graphql/subgraph-http.js';
import { DEADLINE_MS } from '../helpers/deadlines.js';
import { eventually } from '../helpers/eventually.js';

/**
 * A subgraph that never completes the connection. A TCP listener that accepts and never speaks TLS
 * stands in for a black-holed host deterministically: for an https:// subgraph, undici's connect
 * phase (and its connect timeout) lasts until the TLS handshake is done. The call must end at the
 * subgraph timeout, and so must the connection attempt: undici's default connect timeout (10 s)
 * would keep it, and the pool slot, long after the caller was answered.
 */

const TIMEOUT_MS = 300;
let blackhole: Server;
const opened = new Map<Socket, number>();
const closedAfterMs: number[] = [];

beforeAll(async () => {
  blackhole = createServer((socket) => {
    opened.set(socket, Date.now());
    socket.on('error', () => {});
    socket.resume(); // read (and drop) the ClientHello, so the client's close is seen
    socket.on('close', () => closedAfterMs.push(Date.now() - opened.get(socket)!));
  });
  blackhole.listen(0, '127.0.0.1');
  await once(blackhole, 'listening');
});
afterAll(() => {
  for (const socket of opened.keys()) socket.destroy();
  blackhole.close();
});

describe('subgraph connect timeout', () => {
  it('a connection that never completes fails as a timeout at the subgraph timeout, and is given up then too', async () => {
    const client = new SubgraphHttpClient();
    const { port } = blackhole.address() as AddressInfo;
    const endpoint = client.endpoint('blackhole', `https://127.0.0.1:${port}/graphql`, { timeoutMs: TIMEOUT_MS, maxResponseBytes: 1_000_000 });
    try {
      const started = Date.now();
      const error = await endpoint.post({ 'content-type': 'application/json' }, '{"query":"{ __typename }"}').then(
        () => null,
        (reason: unknown) => reason,
      );
      expect(error).toBeInstanceOf(SubgraphTransportError);
      expect((error as SubgraphTransportError).kind).toBe('timeout');
      expect(Date.now() - started).toBeGreaterThanOrEqual(TIMEOUT_MS - 20);
      expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + 1_500);
      // The attempt itself is abandoned at the connect timeout, not after undici's default 10 s.
      expect(opened.size).toBe(1);
      await eventually(() => expect(closedAfterMs).toHaveLength(1), DEADLINE_MS);
      expect(closedAfterMs[0]).toBeLessThan(TIMEOUT_MS + 2_000);
    } finally {
      await client.destroy();
    }
  });
});
