import { LRUCache } from 'lru-cache';
import type { MaybePromise } from '../pipeline/maybe-async.js';
import type { BucketCheck } from './policy.js';

export interface BucketState {
  readonly name: string;
  readonly limit: number;
  readonly windowSeconds: number;
  /** Whole tokens left after this decision. */
  readonly remaining: number;
  /** Seconds until the bucket is full again. */
  readonly resetSeconds: number;
}

export interface Decision {
  readonly allowed: boolean;
  /** Every checked bucket, for the RateLimit headers. */
  readonly buckets: readonly BucketState[];
  /** When refused: seconds until a request would be admitted. */
  readonly retryAfterSeconds: number;
}

/**
 * Token buckets behind one interface: memory (one instance) or Redis (shared, atomic). A decision
 * admits only if every bucket has a token, and then takes one from each — all or nothing.
 */
export interface RateLimitStore {
  /** The decision at once from memory, later from a shared store. */
  consume(checks: readonly BucketCheck[]): MaybePromise<Decision>;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** The token bucket arithmetic, shared by the memory store and mirrored by the Redis script. */
export function refill(bucket: Bucket | undefined, capacity: number, perMs: number, now: number): number {
  if (!bucket) return capacity;
  return Math.min(capacity, bucket.tokens + Math.max(0, now - bucket.at) * perMs);
}

export class MemoryRateLimitStore implements RateLimitStore {
  private readonly buckets = new LRUCache<string, Bucket>({ max: 100_000 });

  constructor(
    private readonly scale = 1,
    private readonly now: () => number = Date.now,
  ) {}

  consume(checks: readonly BucketCheck[]): Decision {
    const now = this.now();
    const levels = checks.map((check) => {
      const capacity = Math.max(1, Math.floor(check.policy.requests * this.scale));
      const perMs = capacity / (check.policy.windowSeconds * 1000);
      return { check, capacity, perMs, tokens: refill(this.buckets.get(check.key), capacity, perMs, now) };
    });
    const allowed = levels.every((level) => level.tokens >= 1);
    if (allowed) {
      for (const level of levels) {
        level.tokens -= 1;
        this.buckets.set(level.check.key, { tokens: level.tokens, at: now }, { ttl: Math.ceil(level.check.policy.windowSeconds * 1000) });
      }
    }
    return decide(allowed, levels);
  }
}

export function decide(
  allowed: boolean,
  levels: readonly { check: BucketCheck; capacity: number; perMs: number; tokens: number }[],
): Decision {
  const buckets = levels.map(({ check, capacity, perMs, tokens }) => ({
    name: check.name,
    limit: capacity,
    windowSeconds: check.policy.windowSeconds,
    remaining: Math.max(0, Math.floor(tokens)),
    resetSeconds: Math.ceil((capacity - tokens) / perMs / 1000),
  }));
  const retryAfterMs = allowed
    ? 0
    : Math.max(...levels.filter((l) => l.tokens < 1).map((l) => (1 - l.tokens) / l.perMs));
  return { allowed, buckets, retryAfterSeconds: Math.max(allowed ? 0 : 1, Math.ceil(retryAfterMs / 1000)) };
}
