import { LRUCache } from 'lru-cache';
import type { BucketPolicy } from './policy.js';
import type { RateLimitStore } from './store.js';

/**
 * Brute-force protection: failed authentications (bad tokens, wrong API keys) are counted per
 * client IP in the shared store; once an IP runs out, it is refused for the bucket's retry time
 * before any key lookup or signature check. Request rate limits run after auth, so without this
 * guessing API keys would be limited by nothing.
 */
export class AuthFailureGuard {
  private readonly blocked = new LRUCache<string, number>({ max: 100_000 });

  constructor(
    private readonly store: RateLimitStore,
    private readonly policy: BucketPolicy,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds this IP must still wait, or 0. */
  blockedFor(ip: string): number {
    const until = this.blocked.get(ip);
    return until && until > this.now() ? Math.ceil((until - this.now()) / 1000) : 0;
  }

  async recordFailure(ip: string): Promise<void> {
    try {
      const decision = await this.store.consume([{ name: 'auth-failures', key: `rl:{ip:${ip}}:auth-failures`, policy: this.policy }]);
      if (!decision.allowed) this.blocked.set(ip, this.now() + decision.retryAfterSeconds * 1000);
    } catch {
      // Store unavailable: counting failures is best effort; the refusal itself already happened.
    }
  }
}
