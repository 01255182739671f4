import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** A synchronous pipeline stage: sets what it must on the request or reply, or throws a GatewayError. */
export type SyncStage = (request: FastifyRequest, reply: FastifyReply) => void;

/**
 * Runs synchronous stages in order in one `onRequest` hook, stopping at the first that throws (its
 * error goes to the error handler, as a throwing hook's would). One hook instead of one per stage:
 * each async hook costs a promise, a microtask and a pass of Fastify's hook runner on every request.
 */
export function installSyncStages(app: FastifyInstance, stages: readonly SyncStage[]): void {
  const run = [...stages];
  app.addHook('onRequest', (request, reply, done) => {
    try {
      for (const stage of run) stage(request, reply);
    } catch (error) {
      done(error as Error);
      return;
    }
    done();
  });
}
