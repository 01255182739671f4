import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Counter } from 'prom-client';
import { GatewayError } from '../errors.js';
import type { Stage } from '../pipeline/stages.js';
import { pathOf } from '../pipeline/path-guard.js';

// The sockets event streams have taken over. Their heads go straight to the socket, so Node's
// ServerResponse never shows an answer as started: whatever else answers on a connection (the
// client-error handler) asks here first, or it would write into the middle of a stream's body.
const streamSockets = new WeakSet<Socket>();

/** Marks `socket` as carrying an event stream (its answer has started, and is its last). */
export function markStreamSocket(socket: Socket): void {
  streamSockets.add(socket);
}

/** True if an event stream writes on `socket`: nothing else may answer on it. */
export function carriesEventStream(socket: Socket): boolean {
  return streamSockets.has(socket);
}

/**
 * A pipeline stage, before any that admits or runs anything: a request pipelined behind an
 * event-stream request on its connection is refused before anything runs for it (route, auth, rate
 * limits). If the stream opens,
 * no answer can follow it on that connection — its body lasts as long as the connection — so
 * executing the request (a publish, say) would do what its client never learns happened; if the
 * stream is refused instead, this 400 (with `Connection: close`) follows that refusal. Node has
 * parsed the request already; it is queued behind the stream request's response, which has the
 * connection (the pipelined response has none: `reply.raw.socket` is null only then).
 * It is logged, and counted in `refused`.
 */
export function refuseRequestsBehindStreams(streamPaths: ReadonlySet<string>, refused: Counter): Stage {
  return (request: FastifyRequest, reply: FastifyReply) => {
    if (reply.raw.socket !== null) return;
    const ahead = (request.raw.socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage?.req;
    if (!ahead || ahead.method !== 'GET' || !streamPaths.has(pathOf(ahead.url ?? ''))) return;
    refused.inc();
    request.log.info({ method: request.method, path: pathOf(request.url) }, 'request pipelined behind an event stream request refused');
    reply.header('connection', 'close');
    throw new GatewayError('BAD_REQUEST', 'A request cannot be pipelined behind an event stream request; send it on a connection of its own');
  };
}
