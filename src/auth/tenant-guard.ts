import { GatewayError } from '../errors.js';
import { andThen, type MaybePromise } from '../pipeline/maybe-async.js';
import { RedisUnavailable } from '../stores/redis-availability.js';
import type { TenantFlags, TenantFlagStore } from '../stores/tenant-flags.js';
import { isTokenFresh, type Principal } from './principal.js';

export interface TenantDecision {
  principal: Principal;
  /** Token claim or tenant flag: writes must be refused. */
  readOnly: boolean;
  /** The subscription has expired but is inside its grace period. */
  inGracePeriod: boolean;
}

/**
 * What each flag rule does when the flags cannot be read (Redis down and no recent last-known
 * value): `open` goes on without the rule, `closed` refuses with 503 TENANT_FLAGS_UNAVAILABLE.
 */
export interface FlagOutagePolicy {
  /** `tenant:<id>:read_only` (TENANT_FLAGS_ON_STORE_FAILURE); the token's own claim still applies. */
  readOnly: 'open' | 'closed';
  /** `tenant:<id>:subscription_changed_at` (TOKEN_FRESHNESS_ON_STORE_FAILURE); user tokens only. */
  tokenFreshness: 'open' | 'closed';
}

const ACTIVE_STATUSES = new Set(['active', 'trialing']);
const NO_FLAGS: TenantFlags = Object.freeze({ readOnly: false, subscriptionChangedAt: null });

/**
 * The seeds' multi-tenant rules: which tenant a request acts for (the token's, or another one the
 * token grants through `tenant_access`), whether the subscription still allows it, whether the
 * token predates a subscription change, and whether the tenant is read-only.
 */
export class TenantGuard {
  constructor(
    private readonly flags: TenantFlagStore,
    private readonly graceSeconds: number,
    private readonly outagePolicy: FlagOutagePolicy = { readOnly: 'open', tokenFreshness: 'open' },
    private readonly now: () => number = () => Date.now() / 1000,
  ) {}

  /**
   * `allowMissingIat`: the deployment's opt-out (TOKEN_FRESHNESS_ALLOW_MISSING_IAT), see isTokenFresh.
   * At once when the flag store answers from memory; refusals throw or reject with a GatewayError.
   */
  check(principal: Principal, requestedTenant: string | undefined, allowMissingIat = false): MaybePromise<TenantDecision> {
    const acting = this.selectTenant(principal, requestedTenant);
    const inGracePeriod = this.checkSubscription(acting);
    if (acting.tenantId === null) return { principal: acting, readOnly: acting.readOnly, inGracePeriod };

    return andThen(this.readFlags(acting.tenantId, acting.kind === 'user'), (flags) => {
      if (!isTokenFresh(acting, flags.subscriptionChangedAt, allowMissingIat)) throw new GatewayError('TOKEN_STALE');
      return { principal: acting, readOnly: acting.readOnly || flags.readOnly, inGracePeriod };
    });
  }

  private readFlags(tenantId: string, freshnessApplies: boolean): MaybePromise<TenantFlags> {
    let flags: MaybePromise<TenantFlags>;
    try {
      flags = this.flags.get(tenantId);
    } catch (error) {
      return this.flagsUnavailable(error, freshnessApplies);
    }
    return flags instanceof Promise ? flags.catch((error: unknown) => this.flagsUnavailable(error, freshnessApplies)) : flags;
  }

  /** The flags could not be read: the outage policy decides (README, "Failure behaviour"). */
  private flagsUnavailable(error: unknown, freshnessApplies: boolean): TenantFlags {
    if (!(error instanceof RedisUnavailable)) throw error;
    if (this.outagePolicy.readOnly === 'closed') {
      throw new GatewayError('TENANT_FLAGS_UNAVAILABLE', "The tenant's read-only flag cannot be checked right now; retry shortly");
    }
    if (this.outagePolicy.tokenFreshness === 'closed' && freshnessApplies) {
      throw new GatewayError('TENANT_FLAGS_UNAVAILABLE', 'Whether this token predates a subscription change cannot be checked right now; retry shortly');
    }
    return NO_FLAGS;
  }

  private selectTenant(principal: Principal, requested: string | undefined): Principal {
    if (requested === undefined || requested === principal.tenantId) return principal;
    const grant = principal.kind === 'user' ? principal.tenantAccess.find((t) => t.tenantId === requested) : undefined;
    if (!grant) throw new GatewayError('TENANT_ACCESS_DENIED', `No access to tenant "${requested.slice(0, 64)}"`);
    // Acting for another tenant, the caller holds what the grant gives there — its role — and none
    // of the token-wide permissions, which were issued for the home tenant.
    return Object.freeze({ ...principal, tenantId: grant.tenantId, roles: grant.role ? [grant.role] : [], permissions: [] });
  }

  /** Returns whether the caller is running on the grace period; throws once it is over. */
  private checkSubscription(principal: Principal): boolean {
    const subscription = principal.subscription;
    if (!subscription) return false;
    const now = this.now();
    const lapsed =
      (subscription.validUntil !== null && subscription.validUntil < now) || !ACTIVE_STATUSES.has(subscription.status);
    if (!lapsed) return false;
    // Without an end date a lapsed status cannot have a grace period to run on.
    const endedAt = subscription.validUntil ?? -Infinity;
    if (now > endedAt + this.graceSeconds) throw new GatewayError('SUBSCRIPTION_EXPIRED');
    return true;
  }
}
