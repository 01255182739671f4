import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ConnectionError, FastifyInstance } from 'fastify';
import type { Counter } from 'prom-client';
import { GatewayError, PROBLEM_CONTENT_TYPE, problemDetails, type ErrorCode } from '../errors.js';
import type { SecurityHeaders } from './security-headers.js';
import { carriesEventStream } from '../events/stream-sockets.js';

const CLIENT_ERRORS: Record<string, ErrorCode> = {
  ERR_HTTP_REQUEST_TIMEOUT: 'REQUEST_TIMEOUT',
  HPE_HEADER_OVERFLOW: 'HEADERS_TOO_LARGE',
};

/**
 * Fastify's `clientErrorHandler`, for what Node refuses before (or while) a request reaches Fastify:
 * the inbound timeouts (rest/inbound-limits.ts), oversized headers, unparsable HTTP. No hook runs for
 * these, so the answer is built here like every other refusal: problem+json with the security
 * headers and a request id (Fastify's default writes bare JSON), counted in
 * `gateway_client_errors_total{code}` (gateway_requests_total never sees them) and logged at info:
 * these are the client's faults.
 */
export function clientErrorAnswers(headers: SecurityHeaders, refusals: Counter<'code'>) {
  // The fixed part of every answer's head, built once.
  const securityLines = headers.map(([name, value]) => `${name}: ${value}\r\n`).join('');

  return function clientErrorHandler(this: FastifyInstance, error: ConnectionError, socket: Socket): void {
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
    refusals.inc({ code: gatewayError.code });
    this.log.info({ code: gatewayError.code, cause: error.code, requestId, remoteAddress: socket.remoteAddress }, 'request rejected by the HTTP server');
    // As Node itself does: write an answer only if no response has started on this connection (a REST
    // upload may already be streaming its upstream's response; an event stream writes its head past
    // the ServerResponse, which therefore never says so), then close it.
    const response = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (socket.writable && !response?.headersSent && !carriesEventStream(socket)) {
      const body = JSON.stringify(problemDetails(gatewayError, requestId));
      socket.write(
        `HTTP/1.1 ${gatewayError.status} ${STATUS_CODES[gatewayError.status]}\r\n` +
          `Content-Type: ${PROBLEM_CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
          `x-request-id: ${requestId}\r\n${securityLines}Connection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy(error);
  };
}
