import { Counter, Registry } from 'prom-client';

/** The gateway's metrics, on a registry that is injected (one per gateway, none global). */
export interface GatewayMetrics {
  readonly registry: Registry;
  readonly authAttempts: Counter<'result'>;
  readonly authCacheHits: Counter;
  readonly authCacheMisses: Counter;
  readonly rateLimitExceeded: Counter<'scope'>;
  readonly rateLimitStoreFailovers: Counter;
}

export function createMetrics(registry = new Registry()): GatewayMetrics {
  return {
    registry,
    authAttempts: new Counter({
      name: 'gateway_auth_attempts_total',
      help: 'Authentication attempts by result (anonymous, jwt, api_key, or the refusal code)',
      labelNames: ['result'],
      registers: [registry],
    }),
    authCacheHits: new Counter({
      name: 'gateway_auth_cache_hits_total',
      help: 'Bearer tokens answered from the verified-token cache',
      registers: [registry],
    }),
    authCacheMisses: new Counter({
      name: 'gateway_auth_cache_misses_total',
      help: 'Bearer tokens that needed a signature verification',
      registers: [registry],
    }),
    rateLimitExceeded: new Counter({
      name: 'gateway_rate_limit_exceeded_total',
      help: 'Requests refused by a rate limit, by scope (graphql, rest, stream)',
      labelNames: ['scope'],
      registers: [registry],
    }),
    rateLimitStoreFailovers: new Counter({
      name: 'gateway_rate_limit_store_failovers_total',
      help: 'Times the shared rate limit store became unreachable',
      registers: [registry],
    }),
  };
}
