import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/**
 * A pipeline stage: sets what it must on the request or reply, or throws a GatewayError. It returns
 * nothing when done at once, or a promise when it had to wait (a signature check, Redis); the next
 * stage runs when that settles, and a rejection stops the pipeline as a throw does.
 */
export type Stage = (request: FastifyRequest, reply: FastifyReply) => void | Promise<void>;

/**
 * Runs stages in order in one `onRequest` hook, stopping at the first that throws or rejects (its
 * error goes to the error handler, as a failing hook's would). One callback hook instead of one
 * per stage, and no promise for a stage that answers at once: each async hook cost a promise, its
 * microtasks and a pass of Fastify's hook runner on every request, even when everything it needed
 * was in memory.
 */
export function installStages(app: FastifyInstance, stages: readonly Stage[]): void {
  const run = [...stages];
  const runFrom = (first: number, request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void): void => {
    for (let i = first; i < run.length; i++) {
      let pending: void | Promise<void>;
      try {
        pending = run[i]!(request, reply);
      } catch (error) {
        done(error as Error);
        return;
      }
      if (pending instanceof Promise) {
        pending.then(
          () => runFrom(i + 1, request, reply, done),
          // As Fastify's own runner does for an async hook that rejects without a reason.
          (error: unknown) => done((error as Error | undefined) ?? new Error('pipeline stage rejected without a reason')),
        );
        return;
      }
    }
    done();
  };
  app.addHook('onRequest', (request, reply, done) => runFrom(0, request, reply, done));
}
