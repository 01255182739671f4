import type { Principal } from '../auth/principal.js';
import { andThen, type MaybePromise } from '../pipeline/maybe-async.js';
import type { BucketCheck, BucketPolicy, RateLimitConfig } from './policy.js';
import type { Decision, RateLimitStore } from './store.js';

export interface LimitScope {
  /** Which kind of destination: used for metrics labels and the per-scope bucket. */
  readonly kind: 'graphql' | 'rest' | 'stream';
  /** A bucket of the route itself (REST route `rateLimit`), named after the route. */
  readonly route?: { readonly name: string; readonly policy: BucketPolicy };
}

/**
 * Decides, for one request, which buckets apply and asks the store. The caller is the API key if
 * any, else the user, else the client IP; every caller has the default bucket plus its class quota
 * (or its tier's), plus the scope's bucket when configured; a tenant-wide bucket can sit on top.
 *
 * Written here rather than with @fastify/rate-limit: that plugin keeps one fixed-window counter per
 * key and route, while this needs token buckets, several buckets per decision taken atomically,
 * tier and class policies, a tenant ceiling and a local fallback while Redis is down.
 */
export class RateLimiter {
  constructor(
    private readonly config: RateLimitConfig,
    private readonly store: RateLimitStore,
  ) {}

  /**
   * The bucket list of an identified caller (user, API client) for a scope: the same on every
   * request of that principal object (cached with its verified token), so its keys are built once.
   * Anonymous callers are keyed by IP and share one principal object: built per request.
   */
  private readonly checksByPrincipal = new WeakMap<Principal, Map<LimitScope, readonly BucketCheck[]>>();

  /** At once with the memory store, later with Redis. */
  check(principal: Principal, clientIp: string, scope: LimitScope): MaybePromise<Decision> {
    return andThen(this.store.consume(this.checksFor(principal, clientIp, scope)), (decision) => {
      const tenantPolicy = this.config.tenant;
      if (!decision.allowed || !tenantPolicy || principal.tenantId === null) return decision;

      // The tenant bucket lives under the tenant's own hash tag, so it is a second (atomic) call.
      const tenantCheck = { name: 'tenant', key: `rl:{tenant:${principal.tenantId}}:tenant`, policy: tenantPolicy };
      return andThen(this.store.consume([tenantCheck]), (tenant) => ({
        ...tenant,
        buckets: [...decision.buckets, ...tenant.buckets],
        policy: `${decision.policy}, ${tenant.policy}`,
      }));
    });
  }

  private checksFor(principal: Principal, clientIp: string, scope: LimitScope): readonly BucketCheck[] {
    if (principal.kind === 'anonymous') return this.buildChecks(principal, clientIp, scope);
    let byScope = this.checksByPrincipal.get(principal);
    if (!byScope) {
      byScope = new Map();
      this.checksByPrincipal.set(principal, byScope);
    }
    let checks = byScope.get(scope);
    if (!checks) {
      checks = this.buildChecks(principal, clientIp, scope);
      byScope.set(scope, checks);
    }
    return checks;
  }

  private buildChecks(principal: Principal, clientIp: string, scope: LimitScope): readonly BucketCheck[] {
    const caller = callerIdentity(principal, clientIp);
    const bucket = (name: string, policy: BucketPolicy): BucketCheck => ({ name, key: `rl:{${caller}}:${name}`, policy });

    const checks = [bucket('default', this.config.default)];
    const tier = principal.tier !== null && Object.hasOwn(this.config.tiers, principal.tier) ? this.config.tiers[principal.tier] : undefined;
    if (tier) checks.push(bucket(`tier-${principal.tier}`, tier));
    else if (principal.kind === 'api-client') checks.push(bucket('api-key', this.config.apiKey));
    else if (principal.kind === 'user') checks.push(bucket('authenticated', this.config.authenticated));
    else checks.push(bucket('anonymous', this.config.anonymous));
    if (scope.kind === 'graphql' && this.config.graphql) checks.push(bucket('graphql', this.config.graphql));
    if (scope.route) checks.push(bucket(scope.route.name, scope.route.policy));
    return checks;
  }
}

/** Who a limit applies to: the API key's client, else the user, else the client IP. */
export function callerIdentity(principal: Principal, clientIp: string): string {
  if (principal.kind === 'api-client') return `key:${principal.id}`;
  if (principal.kind === 'user') return `user:${principal.id}`;
  return `ip:${clientIp}`;
}
