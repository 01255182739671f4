import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';
import type { Exchange } from './exchange.js';

export interface UpstreamResponse {
  readonly statusCode: number;
  readonly headers: IncomingHttpHeaders;
  /** The response body, streamed as it arrives. */
  readonly body: Readable;
}

export interface UpstreamRequest {
  readonly origin: string;
  /** Path and query, exactly as they go on the request line. */
  readonly path: string;
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  /** The client's body, streamed; null for a request without one. */
  readonly body: Readable | null;
  /** Both the wait for the response headers and any pause between body chunks. */
  readonly timeoutMs: number;
}

/**
 * The undici Agent of one service (a keep-alive pool per instance), called directly: the proxy
 * builds the upstream request itself, so nothing is copied or parsed twice (@fastify/reply-from
 * cost ~10% of a proxied request in URL parsing, header copies and retry wrappers the gateway does
 * not use). Each request carries its exchange's AbortSignal, and the outcome of a cancelled
 * exchange is dropped, so a client abort is never reported — or counted — as an upstream failure.
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

  request(request: UpstreamRequest, exchange: Exchange, callback: (error: Error | null, response?: UpstreamResponse) => void): void {
    if (exchange.cancelled) return;
    this.agent.request(
      {
        origin: request.origin,
        path: request.path,
        method: request.method as Dispatcher.HttpMethod,
        headers: request.headers,
        body: request.body,
        headersTimeout: request.timeoutMs,
        bodyTimeout: request.timeoutMs,
        signal: exchange.signal,
      },
      (error, data) => {
        if (exchange.cancelled) {
          // On an error undici passes `{ opaque }` and no body, whatever its types say.
          (data?.body as Dispatcher.ResponseData['body'] | undefined)?.destroy();
          return;
        }
        if (error) callback(error);
        else callback(null, { statusCode: data.statusCode, headers: data.headers as IncomingHttpHeaders, body: data.body });
      },
    );
  }
}
