import cors, { type FastifyCorsOptions } from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import type { GatewayConfig } from '../config/schema.js';

/**
 * CORS for browser clients, answered by the gateway before auth (browsers send preflights without
 * credentials). Requests without `Origin`, and OPTIONS requests that are not preflights, are not
 * ours to answer: they pass through to the route (for REST routes, to the upstream unchanged).
 */
export async function installCors(app: FastifyInstance, config: GatewayConfig): Promise<void> {
  if (config.corsOrigins.length === 0) return;
  const options: FastifyCorsOptions = {
    origin: config.corsOrigins.includes('*') ? true : [...config.corsOrigins],
    credentials: config.corsCredentials,
    exposedHeaders: ['x-request-id', 'retry-after', 'www-authenticate'],
    maxAge: 600,
  };
  const notCors: FastifyCorsOptions = { origin: false };
  await app.register(cors, {
    delegator: (request, callback) => {
      // Without an Origin there is no CORS request: responses stay exactly as the upstream sent them.
      const origin = request.headers.origin;
      const notCorsRequest = !origin || (request.method === 'OPTIONS' && !request.headers['access-control-request-method']);
      callback(null, notCorsRequest ? notCors : options);
    },
  });
}
