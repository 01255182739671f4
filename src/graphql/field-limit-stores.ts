import { LRUCache } from 'lru-cache';
import { Store, type Identity } from 'graphql-rate-limit';
import type { RedisAvailability } from '../stores/redis-availability.js';
import type { RedisClient } from '../stores/redis.js';

/** Callers whose field counters one process keeps, as for request limits (MemoryRateLimitStore). */
const MAX_COUNTED_CALLERS = 100_000;

/**
 * Field counters in this process, each dropped once its window has passed and the least recently
 * used dropped past a bound: graphql-rate-limit's InMemoryStore keeps every caller it ever saw,
 * which grows without end on a long outage (the local fallback) or a long uptime (no Redis).
 */
export class BoundedMemoryStore extends Store {
  private readonly counters: LRUCache<string, readonly number[]>;

  constructor(options: { maxEntries?: number; perf?: { now(): number } } = {}) {
    super();
    this.counters = new LRUCache({ max: options.maxEntries ?? MAX_COUNTED_CALLERS, ...(options.perf ? { perf: options.perf } : {}) });
  }

  /** Counters held now (expired ones are dropped when looked at or pushed out). */
  get size(): number {
    this.counters.purgeStale();
    return this.counters.size;
  }

  setForIdentity(identity: Identity, timestamps: readonly number[], windowMs?: number): void {
    // The limiter passes the window: after it, every timestamp kept here would be ignored anyway.
    this.counters.set(key(identity), [...timestamps], windowMs ? { ttl: windowMs } : {});
  }

  getForIdentity(identity: Identity): readonly number[] {
    return this.counters.get(key(identity)) ?? [];
  }
}

/** Unambiguous whatever either part contains (the length says where the caller ends). */
const key = (identity: Identity) => `${identity.contextIdentity.length}:${identity.contextIdentity}${identity.fieldIdentity}`;

/**
 * Field counters in Redis, in graphql-rate-limit's own format (`redis-store-id::<caller>:<field>`, a
 * JSON list of call timestamps, so counters carry over), every call asked through RedisAvailability.
 * Written here rather than wrapping the library's RedisStore: that one parses the value inside
 * ioredis's callback, where a value that is not JSON throws past every handler and stops the process.
 */
export class AvailableRedisStore extends Store {
  constructor(
    private readonly redis: RedisClient,
    private readonly availability: RedisAvailability,
    /** A value that is not a counter: it counts as empty and is overwritten by this call's count. */
    private readonly onUnreadable: (key: string, value: string) => void,
  ) {
    super();
  }

  async setForIdentity(identity: Identity, timestamps: readonly number[], windowMs?: number): Promise<void> {
    const key = redisKey(identity);
    const value = JSON.stringify(timestamps);
    if (!windowMs) {
      await this.availability.run(() => this.redis.set(key, value));
      return;
    }
    // Kept until the newest call leaves the window, as graphql-rate-limit's store does.
    const newest = timestamps.length > 0 ? Math.max(...timestamps) : Date.now();
    const seconds = Math.max(1, Math.ceil((newest + windowMs - Date.now()) / 1000));
    await this.availability.run(() => this.redis.set(key, value, 'EX', seconds));
  }

  async getForIdentity(identity: Identity): Promise<readonly number[]> {
    const key = redisKey(identity);
    const value = await this.availability.run(() => this.redis.get(key));
    if (value === null) return [];
    const timestamps = parseTimestamps(value);
    if (!timestamps) this.onUnreadable(key, value);
    return timestamps ?? [];
  }
}

const redisKey = (identity: Identity) => `redis-store-id::${identity.contextIdentity}:${identity.fieldIdentity}`;

function parseTimestamps(value: string): number[] | null {
  try {
    const parsed: unknown = JSON.parse(value);
    return Array.isArray(parsed) && parsed.every((t) => typeof t === 'number') ? parsed : null;
  } catch {
    return null;
  }
}
