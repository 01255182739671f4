import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { GatewayError } from '../../src/errors.js';
import { installProblemErrors } from '../../src/pipeline/error-handler.js';
import { installStages, type Stage } from '../../src/pipeline/stages.js';

declare module 'fastify' {
  interface FastifyRequest {
    trail: string[];
  }
}

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

/** A real server with the stages as its pipeline and one route that answers with the request's trail. */
async function serve(stages: Stage[]): Promise<string> {
  app = Fastify({ logger: false });
  app.decorateRequest('trail', null as unknown as string[]);
  app.addHook('onRequest', (request, _reply, done) => {
    request.trail = [];
    done();
  });
  installProblemErrors(app);
  installStages(app, stages);
  app.get('/', async (request) => ({ trail: request.trail }));
  return app.listen({ port: 0, host: '127.0.0.1' });
}

const mark = (name: string): Stage => (request) => void request.trail.push(name);

describe('pipeline stages', () => {
  it('run in order, the next one only after an asynchronous stage has finished', async () => {
    const url = await serve([
      mark('first'),
      async (request: FastifyRequest) => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        request.trail.push('waited');
      },
      mark('after'),
    ]);
    const response = await fetch(url);
    expect(await response.json()).toEqual({ trail: ['first', 'waited', 'after'] });
  });

  it('that answer at once run at once: no microtask runs between them', async () => {
    const url = await serve([
      (request) => {
        request.trail.push('first');
        queueMicrotask(() => request.trail.push('microtask'));
      },
      mark('second'),
      mark('third'),
    ]);
    const response = await fetch(url);
    expect(await response.json()).toEqual({ trail: ['first', 'second', 'third', 'microtask'] });
  });

  it('stop at a stage that throws or rejects: the error is the answer and no later stage runs', async () => {
    const later: string[] = [];
    const url = await serve([
      (request) => {
        if (request.headers['x-fail'] === 'throw') throw new GatewayError('FORBIDDEN');
      },
      async (request: FastifyRequest) => {
        await Promise.resolve();
        if (request.headers['x-fail'] === 'reject') throw new GatewayError('UNAUTHENTICATED');
      },
      (request) => void later.push(String(request.headers['x-fail'])),
    ]);
    const thrown = await fetch(url, { headers: { 'x-fail': 'throw' } });
    expect(thrown.status).toBe(403);
    expect(await thrown.json()).toMatchObject({ code: 'FORBIDDEN' });
    const rejected = await fetch(url, { headers: { 'x-fail': 'reject' } });
    expect(rejected.status).toBe(401);
    expect(await rejected.json()).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(later).toEqual([]);
    expect((await fetch(url)).status).toBe(200);
    expect(later).toEqual(['undefined']);
  });
});
