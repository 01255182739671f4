import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';

/**
 * `Expect: 100-continue` (curl sends it with uploads over 1 MB). Without a `checkContinue` listener,
 * Node answers 100 Continue the moment the headers arrive, before any check: it invites the body of
 * a request the pipeline is about to refuse. Here the 100 is sent when the body is about to be read
 * (`preParsing`, after request id, auth, tenant checks, route policy and rate limits), so a refused
 * upload gets its final status instead and its body never crosses the network (Node then closes the
 * connection rather than reading it). Other expectations still get Node's 417. The `expect` header
 * itself is never forwarded (forwarding.ts).
 */
export function installExpectContinue(app: FastifyInstance): void {
  const awaiting = new WeakSet<IncomingMessage>();
  app.server.on('checkContinue', (request: IncomingMessage, response) => {
    awaiting.add(request);
    app.server.emit('request', request, response);
  });
  // A callback hook, not an async one: it runs for every request, and a promise each is wasted.
  app.addHook('preParsing', (request, reply, payload, done) => {
    if (awaiting.has(request.raw) && !reply.raw.headersSent) reply.raw.writeContinue();
    done(null, payload);
  });
}
