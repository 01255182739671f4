import type { FastifyReply } from 'fastify';
import { GatewayError } from '../errors.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { LimitScope, RateLimiter } from '../ratelimit/limiter.js';
import { RateLimitStoreUnavailable } from '../ratelimit/resilient-store.js';
import type { Decision } from '../ratelimit/store.js';
import { routeOf } from './caller-context.js';
import { settle } from './maybe-async.js';
import type { Stage } from './stages.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Routes with a scope are rate limited (after auth, so the caller is known). */
    rateLimit?: LimitScope;
  }
}

/**
 * Pipeline stage after access control: one decision per request, its headers on every response.
 * Decided at once with the memory store; with Redis the stage waits for the round trip.
 */
export function rateLimit(limiter: RateLimiter, metrics: GatewayMetrics): Stage {
  const apply = (reply: FastifyReply, scope: LimitScope, decision: Decision): void => {
    setRateLimitHeaders(reply, decision);
    if (!decision.allowed) {
      metrics.rateLimitExceeded.inc({ scope: scope.kind });
      reply.header('retry-after', String(decision.retryAfterSeconds));
      throw new GatewayError('RATE_LIMITED', `Too many requests; retry in ${decision.retryAfterSeconds} s`);
    }
  };
  const unavailable = (reply: FastifyReply, error: unknown): never => {
    if (!(error instanceof RateLimitStoreUnavailable)) throw error;
    reply.header('retry-after', '1');
    throw new GatewayError('RATE_LIMIT_UNAVAILABLE');
  };
  return (request, reply) => {
    const scope = routeOf(request).config.rateLimit;
    if (!scope) return;
    return settle(
      () => limiter.check(request.gateway.principal, request.gateway.clientIp, scope),
      (decision) => apply(reply, scope, decision),
      (error) => unavailable(reply, error),
    );
  };
}

/**
 * IETF httpapi RateLimit fields (draft-ietf-httpapi-ratelimit-headers): every policy in
 * `RateLimit-Policy`, the tightest bucket in `RateLimit`; and the widespread X-RateLimit-* trio
 * for that same bucket (`X-RateLimit-Reset` in seconds from now).
 */
function setRateLimitHeaders(reply: FastifyReply, decision: Decision): void {
  const tightest = decision.buckets.reduce((a, b) => (b.remaining < a.remaining ? b : a));
  reply.header('ratelimit-policy', decision.policy);
  reply.header('ratelimit', `"${tightest.name}";r=${tightest.remaining};t=${tightest.resetSeconds}`);
  reply.header('x-ratelimit-limit', String(tightest.limit));
  reply.header('x-ratelimit-remaining', String(tightest.remaining));
  reply.header('x-ratelimit-reset', String(tightest.resetSeconds));
}
