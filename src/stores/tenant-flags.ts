import type { RedisClient } from './redis.js';

export interface TenantFlags {
  readonly readOnly: boolean;
  /** Seconds since the epoch of the tenant's last subscription change; tokens issued before are stale. */
  readonly subscriptionChangedAt: number | null;
}

/** Per-tenant switches that operators (or the billing service) flip without redeploying. */
export interface TenantFlagStore {
  get(tenantId: string): Promise<TenantFlags>;
  setReadOnly(tenantId: string, readOnly: boolean): Promise<void>;
  markSubscriptionChanged(tenantId: string, atSeconds: number): Promise<void>;
}

const NO_FLAGS: TenantFlags = Object.freeze({ readOnly: false, subscriptionChangedAt: null });

export class MemoryTenantFlagStore implements TenantFlagStore {
  private readonly flags = new Map<string, TenantFlags>();

  async get(tenantId: string): Promise<TenantFlags> {
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
 */
export class RedisTenantFlagStore implements TenantFlagStore {
  constructor(private readonly redis: RedisClient) {}

  async get(tenantId: string): Promise<TenantFlags> {
    // Two GETs, auto-pipelined into one round trip (an MGET would cross slots on Redis Cluster).
    const [readOnly, changedAt] = await Promise.all([this.redis.get(readOnlyKey(tenantId)), this.redis.get(changedAtKey(tenantId))]);
    return { readOnly: readOnly === '1' || readOnly === 'true', subscriptionChangedAt: parseInstant(changedAt ?? null) };
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
