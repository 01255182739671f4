import type { FastifyBaseLogger } from 'fastify';
import type { RedisAvailability } from '../stores/redis-availability.js';
import type { BucketCheck } from './policy.js';
import { settle, type MaybePromise } from '../pipeline/maybe-async.js';
import { MemoryRateLimitStore, type Decision, type RateLimitStore } from './store.js';

export class RateLimitStoreUnavailable extends Error {
  override name = 'RateLimitStoreUnavailable';
}

export interface ResilienceOptions {
  mode: 'open' | 'closed';
  /** Local buckets get this share of each capacity (other instances admit too). */
  fallbackFactor: number;
  logger: FastifyBaseLogger;
  onFailover: () => void;
  /**
   * The shared store's Redis, for readiness (this feature's policy) and the fallback count. The
   * shared store bounds its own calls through it (RedisRateLimitStore: one bounded call per batch).
   */
  availability?: RedisAvailability | null;
  now?: () => number;
}

/**
 * Keeps decisions flowing while the shared store is down. `open`: local buckets scaled down (other
 * instances admit too); `closed`: refuse. The switch is logged once each way and counted; while
 * down, the shared store is probed at most once a second, so no request waits on a dead Redis.
 */
export class ResilientRateLimitStore implements RateLimitStore {
  private downSince: number | null = null;
  private lastProbe = 0;
  private readonly fallback: MemoryRateLimitStore;
  private readonly mode: 'open' | 'closed';
  private readonly logger: FastifyBaseLogger;
  private readonly onFailover: () => void;
  private readonly availability: RedisAvailability | null;
  private readonly now: () => number;

  constructor(
    private readonly shared: RateLimitStore,
    options: ResilienceOptions,
  ) {
    this.fallback = new MemoryRateLimitStore(options.fallbackFactor);
    this.mode = options.mode;
    this.logger = options.logger;
    this.onFailover = options.onFailover;
    this.availability = options.availability ?? null;
    this.now = options.now ?? Date.now;
    this.availability?.declare('rateLimits', options.mode);
  }

  get degraded(): boolean {
    return this.downSince !== null;
  }

  /**
   * The shared store's decision while it answers; while it is down, the local one at once (`open`)
   * or a rejection (`closed`). No `async`: a decision costs the shared store's promise and one
   * `then`, not an async function's own promise and resumption on top.
   */
  consume(checks: readonly BucketCheck[]): MaybePromise<Decision> {
    const now = this.now();
    if (this.downSince === null || now - this.lastProbe >= 1_000) {
      if (this.downSince !== null) this.lastProbe = now;
      return settle(
        () => this.shared.consume(checks),
        (decision) => {
          if (this.downSince !== null) {
            this.logger.info({ downForMs: now - this.downSince }, 'rate limit store recovered; shared limits apply again');
            this.downSince = null;
          }
          return decision;
        },
        (error) => {
          if (this.downSince === null) {
            this.downSince = now;
            this.lastProbe = now;
            this.onFailover();
            this.logger.error(
              { reason: (error as Error).message, mode: this.mode },
              this.mode === 'open' ? 'rate limit store unavailable; using local limits' : 'rate limit store unavailable; refusing requests',
            );
          }
          return this.local(checks);
        },
      );
    }
    return this.local(checks);
  }

  /** The decision without the shared store: local buckets (`open`), or a refusal (`closed`, as a rejection). */
  private local(checks: readonly BucketCheck[]): MaybePromise<Decision> {
    this.availability?.fellBack('rateLimits');
    if (this.mode === 'closed') return Promise.reject(new RateLimitStoreUnavailable('rate limit store unavailable'));
    return this.fallback.consume(checks);
  }
}
