import type { IncomingHttpHeaders } from 'node:http';
import { Agent, type Dispatcher } from 'undici';
import { takeExchange } from './exchange.js';

type RequestCallback = (error: Error | null, data?: Dispatcher.ResponseData) => void;
type ReplyFromDispatcher = { request: Dispatcher['request'] };

/**
 * The undici Agent of one service, as reply-from calls it. reply-from passes no AbortSignal to
 * undici, so a request whose client has gone would run on (and hold a connection) until the upstream
 * answers or times out; this adapter adds the exchange's signal and drops the outcome of cancelled
 * exchanges, so a client abort is never reported — or counted — as an upstream failure.
 */
export class UpstreamDispatcher {
  private readonly agent: Agent;

  constructor(connections: number) {
    // One request per connection (no pipelining), so in-flight requests are held connections.
    this.agent = new Agent({ connections, pipelining: 1, keepAliveTimeout: 30_000 });
  }

  /** reply-from only uses the callback form of `request`, which is all this implements. */
  forReplyFrom(): ReplyFromDispatcher {
    return { request: ((options: Dispatcher.RequestOptions, callback: RequestCallback) => this.request(options, callback)) as Dispatcher['request'] };
  }

  destroy(): Promise<void> {
    return this.agent.destroy();
  }

  private request(options: Dispatcher.RequestOptions, callback: RequestCallback): void {
    const headers = { ...(options.headers as IncomingHttpHeaders) };
    const exchange = takeExchange(headers);
    if (!exchange) {
      this.agent.request({ ...options, headers }, callback);
      return;
    }
    if (exchange.cancelled) return;
    this.agent.request({ ...options, headers, signal: exchange.signal }, (error, data) => {
      if (exchange.cancelled) {
        // On an error undici passes `{ opaque }` and no body, whatever its types say.
        (data?.body as Dispatcher.ResponseData['body'] | undefined)?.destroy();
        return;
      }
      callback(error, data);
    });
  }
}
