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
  /**
   * The `RateLimit-Policy` field value: every bucket's quota. The same for every decision on one
   * bucket list, so it is built once per list (lists are kept per caller), not per request.
   */
  readonly policy: string;
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

/** What every decision on one bucket list shares (at one capacity scale): worked out once per list. */
export class BucketList {
  readonly capacity: readonly number[];
  /** Tokens refilled per millisecond. */
  readonly perMs: readonly number[];
  readonly policy: string;

  constructor(
    readonly checks: readonly BucketCheck[],
    scale: number,
  ) {
    this.capacity = checks.map((check) => Math.max(1, Math.floor(check.policy.requests * scale)));
    this.perMs = checks.map((check, i) => this.capacity[i]! / (check.policy.windowSeconds * 1000));
    this.policy = checks.map((check, i) => `"${check.name}";q=${this.capacity[i]};w=${check.policy.windowSeconds}`).join(', ');
  }
}

/**
 * Bucket lists by their checks array, for one scale. Lists of identified callers are kept with
 * their principal (RateLimiter), so their constants are found here instead of rebuilt per request;
 * lists built per request (anonymous callers) are collected with their array.
 */
export class BucketLists {
  private readonly lists = new WeakMap<readonly BucketCheck[], BucketList>();

  constructor(private readonly scale = 1) {}

  of(checks: readonly BucketCheck[]): BucketList {
    let list = this.lists.get(checks);
    if (!list) {
      list = new BucketList(checks, this.scale);
      this.lists.set(checks, list);
    }
    return list;
  }
}

export class MemoryRateLimitStore implements RateLimitStore {
  /**
   * No TTL: an untouched bucket refills by the arithmetic above (one window later it is full, as good
   * as absent), so expiry would only reclaim memory, which the LRU bound does already. Buckets are
   * updated in place: a decision allocates no bucket, and the LRU does no per-entry TTL bookkeeping.
   */
  private readonly buckets = new LRUCache<string, Bucket>({ max: 100_000 });
  private readonly lists: BucketLists;

  constructor(
    scale = 1,
    private readonly now: () => number = Date.now,
  ) {
    this.lists = new BucketLists(scale);
  }

  consume(checks: readonly BucketCheck[]): Decision {
    const list = this.lists.of(checks);
    const now = this.now();
    const found: (Bucket | undefined)[] = [];
    const tokens: number[] = [];
    let allowed = true;
    for (let i = 0; i < checks.length; i++) {
      const bucket = this.buckets.get(checks[i]!.key);
      const level = refill(bucket, list.capacity[i]!, list.perMs[i]!, now);
      if (level < 1) allowed = false;
      found.push(bucket);
      tokens.push(level);
    }
    if (allowed) {
      for (let i = 0; i < checks.length; i++) {
        const level = (tokens[i] = tokens[i]! - 1);
        const bucket = found[i];
        if (bucket) {
          bucket.tokens = level;
          bucket.at = now;
        } else {
          this.buckets.set(checks[i]!.key, { tokens: level, at: now });
        }
      }
    }
    return decide(allowed, list, tokens);
  }
}

/** The decision on a bucket list, from each bucket's level after it (or, when refused, as found). */
export function decide(allowed: boolean, list: BucketList, tokens: readonly number[]): Decision {
  const buckets: BucketState[] = [];
  let retryAfterMs = 0;
  for (let i = 0; i < tokens.length; i++) {
    const level = tokens[i]!;
    const capacity = list.capacity[i]!;
    const perMs = list.perMs[i]!;
    buckets.push({
      name: list.checks[i]!.name,
      limit: capacity,
      windowSeconds: list.checks[i]!.policy.windowSeconds,
      remaining: Math.max(0, Math.floor(level)),
      resetSeconds: Math.ceil((capacity - level) / perMs / 1000),
    });
    if (!allowed && level < 1) retryAfterMs = Math.max(retryAfterMs, (1 - level) / perMs);
  }
  return { allowed, buckets, policy: list.policy, retryAfterSeconds: Math.max(allowed ? 0 : 1, Math.ceil(retryAfterMs / 1000)) };
}
