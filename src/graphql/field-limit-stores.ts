import { LRUCache } from 'lru-cache';
import { RedisStore, Store, type Identity } from 'graphql-rate-limit';
import type { RedisAvailability } from '../stores/redis-availability.js';

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

/** graphql-rate-limit's Redis store with every call asked through RedisAvailability. */
export class AvailableStore extends Store {
  constructor(
    private readonly store: RedisStore,
    private readonly availability: RedisAvailability,
  ) {
    super();
  }

  setForIdentity(identity: Identity, timestamps: readonly number[], windowMs?: number): Promise<void> {
    return this.availability.run(() => this.store.setForIdentity(identity, timestamps, windowMs));
  }

  getForIdentity(identity: Identity): Promise<readonly number[]> {
    return this.availability.run(() => this.store.getForIdentity(identity));
  }
}
