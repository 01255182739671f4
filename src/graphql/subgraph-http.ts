import type { RemoteGraphQLDataSource } from '@apollo/gateway';
import { Agent, fetch } from 'undici';

export type Fetcher = RemoteGraphQLDataSource['fetcher'];

/**
 * One keep-alive connection pool for every subgraph call: undici keeps a pool per origin, so a busy
 * gateway reuses warm connections instead of paying a TCP (and TLS) handshake per subgraph fetch.
 */
export class SubgraphHttpClient {
  private readonly agent = new Agent({
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 600_000,
    connections: 256,
  });

  /** A fetcher whose whole exchange (connect, headers and body) is bounded by `timeoutMs`. */
  fetcherWithTimeout(timeoutMs: number): Fetcher {
    const dispatcher = this.agent;
    // The Apollo fetcher types mirror WHATWG fetch; undici's fetch is one, its types only differ nominally.
    return ((url: string, init?: Parameters<Fetcher>[1]) =>
      fetch(url, {
        ...(init as object),
        dispatcher,
        signal: AbortSignal.timeout(timeoutMs),
      })) as unknown as Fetcher;
  }

  /**
   * Called once no client request is left (Fastify's onClose): anything still pending belongs to a
   * request that was cut at the shutdown deadline, so abort it rather than wait.
   */
  async destroy(): Promise<void> {
    await this.agent.destroy();
  }
}
