import type { Readable } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';

export interface UpstreamRequest {
  readonly origin: string;
  /** Path and query, exactly as they go on the request line. */
  readonly path: string;
  readonly method: string;
  /** Flat `[name, value, …]`, as undici takes them. */
  readonly headers: readonly string[];
  /** The client's body, streamed; null for a request without one. */
  readonly body: Readable | null;
  /** Both the wait for the response headers and any pause between body chunks. */
  readonly timeoutMs: number;
}

/**
 * The undici Agent of one service (a keep-alive pool per instance), dispatched to directly: the
 * proxy builds the upstream request itself, so nothing is copied or parsed twice (@fastify/reply-from
 * cost ~10% of a proxied request in URL parsing, header copies and retry wrappers the gateway does
 * not use), and the response goes to the handler (the exchange) as it arrives, without the Readable
 * that `agent.request()` wraps every body in.
 */
export class UpstreamDispatcher {
  private readonly agent: Agent;

  constructor(connections: number) {
    // One request per connection (no pipelining), so in-flight requests are held connections.
    this.agent = new Agent({ connections, pipelining: 1, keepAliveTimeout: 30_000 });
  }

  destroy(): Promise<void> {
    return this.agent.destroy();
  }

  dispatch(request: UpstreamRequest, handler: Dispatcher.DispatchHandler): void {
    this.agent.dispatch(
      {
        origin: request.origin,
        path: request.path,
        method: request.method as Dispatcher.HttpMethod,
        headers: request.headers as string[],
        body: request.body,
        headersTimeout: request.timeoutMs,
        bodyTimeout: request.timeoutMs,
      },
      handler,
    );
  }
}
