import type { LastKnown } from './last-known.js';
import { RedisAvailability, RedisUnavailable } from './redis-availability.js';
import type { RedisClient } from './redis.js';

export interface TenantFlags {
  readonly readOnly: boolean;
  /** Seconds since the epoch of the tenant's last subscription change; tokens issued before are stale. */
  readonly subscriptionChangedAt: number | null;
}

/** Per-tenant switches that operators (or the billing service) flip without redeploying. */
export interface TenantFlagStore {
  /** The flags at once when held in memory (no promise on every request), else once read. */
  get(tenantId: string): TenantFlags | Promise<TenantFlags>;
  setReadOnly(tenantId: string, readOnly: boolean): Promise<void>;
  markSubscriptionChanged(tenantId: string, atSeconds: number): Promise<void>;
}

const NO_FLAGS: TenantFlags = Object.freeze({ readOnly: false, subscriptionChangedAt: null });

export class MemoryTenantFlagStore implements TenantFlagStore {
  private readonly flags = new Map<string, TenantFlags>();

  get(tenantId: string): TenantFlags {
    return this.flags.get(tenantId) ?? NO_FLAGS;
  }

  async setReadOnly(tenantId: string, readOnly: boolean): Promise<void> {
    this.flags.set(tenantId, { ...(this.flags.get(tenantId) ?? NO_FLAGS), readOnly });
  }

  async markSubscriptionChanged(tenantId: string, atSeconds: number): Promise<void> {
    this.flags.set(tenantId, { ...(this.flags.get(tenantId) ?? NO_FLAGS), subscriptionChangedAt: atSeconds });
  }
}

/**
 * Keys as the seeds' services write them: `tenant:<id>:read_only` ("1"/"true") and
 * `tenant:<id>:subscription_changed_at` (epoch seconds or an ISO date). One round trip per request.
 * While Redis is unreachable, a tenant's flags read within REDIS_LAST_KNOWN_SECONDS stand in;
 * without them `get` throws RedisUnavailable and the tenant guard applies its policy.
 */
export class RedisTenantFlagStore implements TenantFlagStore {
  private readonly lastKnown: LastKnown<TenantFlags>;

  constructor(
    private readonly redis: RedisClient,
    private readonly availability = RedisAvailability.of(redis),
  ) {
    this.lastKnown = availability.lastKnown(10_000);
  }

  async get(tenantId: string): Promise<TenantFlags> {
    try {
      // Two GETs, auto-pipelined into one round trip (an MGET would cross slots on Redis Cluster).
      const [readOnly, changedAt] = await this.availability.run(() =>
        Promise.all([this.redis.get(readOnlyKey(tenantId)), this.redis.get(changedAtKey(tenantId))]),
      );
      const flags = { readOnly: readOnly === '1' || readOnly === 'true', subscriptionChangedAt: parseInstant(changedAt ?? null) };
      this.lastKnown.remember(tenantId, flags);
      return flags;
    } catch (error) {
      if (!(error instanceof RedisUnavailable)) throw error;
      this.availability.fellBack('tenantFlags');
      const known = this.lastKnown.recall(tenantId);
      if (known) return known;
      throw error;
    }
  }

  async setReadOnly(tenantId: string, readOnly: boolean): Promise<void> {
    if (readOnly) await this.redis.set(readOnlyKey(tenantId), '1');
    else await this.redis.del(readOnlyKey(tenantId));
  }

  async markSubscriptionChanged(tenantId: string, atSeconds: number): Promise<void> {
    await this.redis.set(changedAtKey(tenantId), String(atSeconds));
  }
}

const readOnlyKey = (tenantId: string) => `tenant:${tenantId}:read_only`;
const changedAtKey = (tenantId: string) => `tenant:${tenantId}:subscription_changed_at`;

function parseInstant(value: string | null): number | null {
  if (!value) return null;
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value);
  const parsed = Date.parse(value);
  return Number.isNaN(parsed) ? null : parsed / 1000;
}
