import { LRUCache } from 'lru-cache';
import type { LastKnown } from './last-known.js';
import { RedisAvailability, RedisUnavailable } from './redis-availability.js';
import type { RedisClient } from './redis.js';
import type { RedisKeyTracking } from './redis-tracking.js';

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
 * `tenant:<id>:subscription_changed_at` (epoch seconds or an ISO date), read in one round trip.
 *
 * With key tracking (see RedisKeyTracking) the flags read are kept in process and answered at once,
 * until Redis announces a write to one of the tenant's keys, by whoever made it; while tracking is
 * not established every request reads Redis. A read during which any invalidation (or a tracking
 * change, or a write through this store) happened is answered but not kept: its reply may predate the
 * write. While Redis is unreachable, a tenant's flags read within REDIS_LAST_KNOWN_SECONDS stand in
 * (the cached ones count as read at the moment tracking or Redis was lost); without them `get` throws
 * RedisUnavailable and the tenant guard applies its policy.
 */
export class RedisTenantFlagStore implements TenantFlagStore {
  private readonly lastKnown: LastKnown<TenantFlags>;
  private readonly cached: LRUCache<string, TenantFlags>;
  /** Bumped by every invalidation, tracking change and local write: a read that saw it move is not kept. */
  private generation = 0;

  constructor(
    private readonly redis: RedisClient,
    private readonly availability = RedisAvailability.of(redis),
    private readonly tracking: RedisKeyTracking | null = null,
    maxCachedTenants = 10_000,
  ) {
    this.lastKnown = availability.lastKnown(10_000);
    this.cached = new LRUCache({ max: maxCachedTenants });
    tracking?.listen({
      invalidated: (key) => {
        this.generation++;
        if (key === null) this.cached.clear();
        else this.cached.delete(tenantOfKey(key));
      },
      lost: () => {
        this.generation++;
        this.retireCache();
      },
    });
  }

  get(tenantId: string): TenantFlags | Promise<TenantFlags> {
    if (this.tracking?.active) {
      if (this.availability.usable()) {
        const hit = this.cached.get(tenantId);
        if (hit) return hit;
      } else if (this.cached.size > 0) {
        // Redis stopped answering before the tracking connection noticed: invalidations may be held up.
        this.retireCache();
      }
    }
    return this.read(tenantId);
  }

  async setReadOnly(tenantId: string, readOnly: boolean): Promise<void> {
    if (readOnly) await this.redis.set(readOnlyKey(tenantId), '1');
    else await this.redis.del(readOnlyKey(tenantId));
    this.writtenHere(tenantId);
  }

  async markSubscriptionChanged(tenantId: string, atSeconds: number): Promise<void> {
    await this.redis.set(changedAtKey(tenantId), String(atSeconds));
    this.writtenHere(tenantId);
  }

  private async read(tenantId: string): Promise<TenantFlags> {
    const generation = this.generation;
    try {
      // Two GETs, auto-pipelined into one round trip (an MGET would cross slots on Redis Cluster).
      const [readOnly, changedAt] = await this.availability.run(() =>
        Promise.all([this.redis.get(readOnlyKey(tenantId)), this.redis.get(changedAtKey(tenantId))]),
      );
      const flags: TenantFlags = { readOnly: readOnly === '1' || readOnly === 'true', subscriptionChangedAt: parseInstant(changedAt ?? null) };
      this.lastKnown.remember(tenantId, flags);
      if (generation === this.generation && this.tracking?.active) this.cached.set(tenantId, flags);
      return flags;
    } catch (error) {
      if (!(error instanceof RedisUnavailable)) throw error;
      this.availability.fellBack('tenantFlags');
      const known = this.lastKnown.recall(tenantId);
      if (known) return known;
      throw error;
    }
  }

  /** Our own write: the invalidation comes through the tracking connection, but this request's answer must not wait for it. */
  private writtenHere(tenantId: string): void {
    this.generation++;
    this.cached.delete(tenantId);
  }

  /**
   * The cached flags were true up to now (every write was announced); from here on they may not be.
   * They stand in during an outage like any value just read, for REDIS_LAST_KNOWN_SECONDS.
   */
  private retireCache(): void {
    for (const [tenantId, flags] of this.cached.entries()) this.lastKnown.remember(tenantId, flags);
    this.cached.clear();
  }
}

const KEY_PREFIX = 'tenant:';
const readOnlyKey = (tenantId: string) => `${KEY_PREFIX}${tenantId}:read_only`;
const changedAtKey = (tenantId: string) => `${KEY_PREFIX}${tenantId}:subscription_changed_at`;
/** `tenant:<id>:<flag>` → `<id>` (an id may itself contain colons; the flag name does not). */
const tenantOfKey = (key: string) => key.slice(KEY_PREFIX.length, key.lastIndexOf(':'));

/** The prefix whose writes invalidate cached flags (RedisKeyTracking). */
export const TENANT_FLAG_KEY_PREFIX = KEY_PREFIX;

function parseInstant(value: string | null): number | null {
  if (!value) return null;
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value);
  const parsed = Date.parse(value);
  return Number.isNaN(parsed) ? null : parsed / 1000;
}
