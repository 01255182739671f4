import helmet, { type FastifyHelmetOptions } from '@fastify/helmet';
import Fastify, { type FastifyReply } from 'fastify';

export type SecurityHeaders = readonly (readonly [name: string, value: string])[];

/**
 * The headers @fastify/helmet sets with these options, computed once at start-up with its own API
 * (`reply.helmet()` on a throwaway instance, headers read back from the response it touched). The
 * plugin registered globally rebuilds helmet's middleware chain from the options on every request
 * (two hooks, a closure, a dozen middleware calls): ~8% of the gateway's CPU on REST passthrough,
 * for a header set that never changes. Only per-request values (CSP nonces) would need it per
 * request, and a JSON API serves no HTML: they are refused here.
 */
export async function securityHeaders(options: FastifyHelmetOptions): Promise<SecurityHeaders> {
  if (options.enableCSPNonces) throw new Error('CSP nonces are per request: they cannot be part of a fixed header set');
  const probe = Fastify({ logger: false });
  let headers: SecurityHeaders = [];
  try {
    // Not global: the headers come from the one `reply.helmet()` call below.
    const probeOptions: FastifyHelmetOptions = { ...options, global: false };
    await probe.register(helmet, probeOptions);
    probe.get('/', (_request, reply) => {
      const before = new Set(reply.raw.getHeaderNames());
      reply.helmet();
      headers = reply.raw
        .getHeaderNames()
        .filter((name) => !before.has(name))
        .map((name) => [name, String(reply.raw.getHeader(name))] as const);
      return reply.send('');
    });
    await probe.inject('/');
  } finally {
    await probe.close();
  }
  if (headers.length === 0) throw new Error('@fastify/helmet set no headers: the security header set could not be computed');
  return headers;
}

/** The pipeline stage that sets them: on every response, as the plugin did, before any hook can refuse. */
export function setSecurityHeaders(headers: SecurityHeaders): (request: unknown, reply: FastifyReply) => void {
  return (_request, reply) => {
    for (const [name, value] of headers) reply.header(name, value);
  };
}
