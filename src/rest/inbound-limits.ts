import type { GatewayConfig } from '../config/schema.js';

/**
 * How long a client may take to send a request, with Node's own HTTP server timeouts (Fastify passes
 * `requestTimeout` through and the rest in `http`; both default to off or minutes, so a body trickled
 * at one byte per 15 s stayed open indefinitely):
 * - `requestTimeout`: the whole request — headers and body — must have arrived within
 *   REQUEST_TIMEOUT_MS, for every route; Node then answers 408 and closes the connection. A request
 *   that has fully arrived is no longer timed by it (waiting for the upstream is the service's
 *   `timeoutMs`). Large uploads over slow links need a larger value; the REST body idle timeout
 *   (body-guard.ts) still cuts a client that stops sending.
 * - `headersTimeout`: the headers alone, within the same bound or 60 s (Node's default, nginx's
 *   `client_header_timeout`), whichever is shorter.
 * - `connectionsCheckingInterval`: how often Node checks both, hence their granularity.
 * Fastify's `connectionTimeout` (socket inactivity) does not fit: it would also cut a client that is
 * quietly waiting for a slow upstream's answer. What Node answers then is pipeline/client-error-answers.ts.
 */
export function inboundServerOptions(config: Pick<GatewayConfig, 'requestTimeoutMs'>) {
  const timeout = config.requestTimeoutMs;
  return {
    requestTimeout: timeout,
    http: {
      requestTimeout: timeout,
      headersTimeout: Math.min(timeout, 60_000),
      connectionsCheckingInterval: Math.min(1_000, Math.max(100, Math.floor(timeout / 4))),
    },
  };
}
