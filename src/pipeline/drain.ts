import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError } from '../errors.js';
import { pathOf } from './path-guard.js';

/**
 * Graceful drain, bounded by one deadline.
 *
 * Fastify's `close()` stops listening at once. That is too early for a gateway: requests admitted
 * before the shutdown may still need this instance, e.g. a subgraph verifying the context token
 * fetches `/.well-known/jwks.json` from it. So a drain first keeps listening: requests admitted
 * before it complete, the JWKS and health endpoints still answer, every other new request gets 503
 * `SHUTTING_DOWN` with `Connection: close` (retry elsewhere). Once no admitted request is left, or at
 * the deadline, the server closes; connections still open at the deadline are cut, so a client that
 * stopped reading a large response cannot hold the process. Stream-like routes (event streams) end
 * themselves on `onDrain` so they count as finished.
 */
export interface Drain {
  readonly draining: boolean;
  /** Pipeline stage: refuses new requests while draining, counts admitted ones until their response closes. */
  admit(request: FastifyRequest, reply: FastifyReply): void;
  /** Called once when the drain begins (long-lived responses end here). */
  onDrain(listener: () => void): void;
  /** Drains, then closes the app; resolves when everything is closed. */
  shutdown(): Promise<void>;
}

/** Paths that keep answering during a drain: other instances' requests in flight depend on them. */
const SERVED_WHILE_DRAINING = new Set(['/.well-known/jwks.json', '/health', '/health/ready']);

export function installDrain(app: FastifyInstance, timeoutMs: number): Drain {
  let draining = false;
  let deadline = Number.POSITIVE_INFINITY;
  /** Responses of admitted requests, until they close. */
  const inFlight = new Set<ServerResponse>();
  let idle: (() => void) | null = null;
  const listeners: (() => void)[] = [];

  // One function for every response ('close' listeners are called with the response as `this`).
  function finished(this: ServerResponse): void {
    inFlight.delete(this);
    if (inFlight.size === 0 && idle) idle();
  }
  const admit = (request: FastifyRequest, reply: FastifyReply): void => {
    if (draining && !SERVED_WHILE_DRAINING.has(pathOf(request.url))) {
      reply.header('connection', 'close').header('retry-after', '1');
      throw new GatewayError('SHUTTING_DOWN');
    }
    // An upgraded connection (WebSocket) is no request/response pair: it is closed with the app.
    if (request.headers.upgrade !== undefined) return;
    inFlight.add(reply.raw);
    // 'close' fires once per response, whether it finished or the client went away.
    reply.raw.once('close', finished);
    if (draining) reply.raw.setHeader('connection', 'close');
  };
  // Whatever closes the app (a drain, or `app.close()` directly), open connections are cut at the
  // deadline: `server.close()` alone would wait for them for ever.
  let cut: NodeJS.Timeout | undefined;
  app.addHook('preClose', async () => {
    const remaining = Math.max(0, Math.min(deadline, Date.now() + timeoutMs) - Date.now());
    cut = setTimeout(() => {
      app.log.warn({ timeoutMs }, 'shutdown deadline reached, closing remaining connections');
      app.server.closeAllConnections();
    }, remaining);
    cut.unref();
  });
  app.addHook('onClose', async () => clearTimeout(cut));

  return {
    get draining() {
      return draining;
    },
    admit,
    onDrain: (listener) => void listeners.push(listener),
    async shutdown() {
      if (!draining) {
        draining = true;
        deadline = Date.now() + timeoutMs;
        // While draining, responses tell keep-alive clients to let go, so connections end with them
        // (set on the response itself: whatever sends it, Fastify or the REST proxy, keeps it).
        for (const response of inFlight) if (!response.headersSent) response.setHeader('connection', 'close');
        for (const listener of listeners) listener();
        if (inFlight.size > 0) {
          await new Promise<void>((resolve) => {
            idle = resolve;
            setTimeout(resolve, timeoutMs).unref();
          });
        }
      }
      await app.close();
    },
  };
}
