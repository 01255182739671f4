import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ConnectionError, FastifyInstance } from 'fastify';
import type { GatewayConfig } from '../config/schema.js';
import { GatewayError, PROBLEM_CONTENT_TYPE, problemDetails, type ErrorCode } from '../errors.js';

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
 * quietly waiting for a slow upstream's answer.
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
    clientErrorHandler,
  };
}

const CLIENT_ERRORS: Record<string, ErrorCode> = {
  ERR_HTTP_REQUEST_TIMEOUT: 'REQUEST_TIMEOUT',
  HPE_HEADER_OVERFLOW: 'HEADERS_TOO_LARGE',
};

/**
 * Fastify's `clientErrorHandler`, for what Node refuses before (or while) a request reaches Fastify:
 * the timeouts above, oversized headers, unparsable HTTP. The answer is problem+json like every other
 * refusal (Fastify's default writes its own JSON), logged at info: these are the client's faults.
 */
function clientErrorHandler(this: FastifyInstance, error: ConnectionError, socket: Socket): void {
  // A reset connection has nobody left to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  // The client closed its side before its request was complete: an abort, not a request to answer.
  if (error.code === 'HPE_INVALID_EOF_STATE') {
    this.log.info({ cause: error.code, remoteAddress: socket.remoteAddress }, 'client closed the connection mid-request');
    socket.destroy();
    return;
  }
  const gatewayError = new GatewayError(CLIENT_ERRORS[error.code ?? ''] ?? 'BAD_REQUEST');
  const requestId = randomUUID();
  this.log.info({ code: gatewayError.code, cause: error.code, requestId, remoteAddress: socket.remoteAddress }, 'request rejected by the HTTP server');
  // As Node itself does: write an answer only if no response has started on this connection (a REST
  // upload may already be streaming its upstream's response), then close it.
  const response = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (socket.writable && !response?.headersSent) {
    const body = JSON.stringify(problemDetails(gatewayError, requestId));
    socket.write(
      `HTTP/1.1 ${gatewayError.status} ${STATUS_CODES[gatewayError.status]}\r\n` +
        `Content-Type: ${PROBLEM_CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `x-request-id: ${requestId}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}
