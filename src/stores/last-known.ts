import { LRUCache } from 'lru-cache';

/**
 * Values last read from a shared store, kept to stand in for it while it is unreachable — and only
 * for `maxAgeMs` after the read that produced them: an old value may no longer be true (a key
 * revoked, a flag flipped by a service that can still reach the store). Bounded in count too.
 */
export class LastKnown<V extends NonNullable<unknown>> {
  private readonly entries: LRUCache<string, { value: V; at: number }>;

  constructor(
    private readonly maxAgeMs: number,
    maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {
    this.entries = new LRUCache({ max: maxEntries });
  }

  remember(key: string, value: V): void {
    if (this.maxAgeMs > 0) this.entries.set(key, { value, at: this.now() });
  }

  /** The store said the key has no value (revoked, deleted): nothing to stand in with. */
  forget(key: string): void {
    this.entries.delete(key);
  }

  recall(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (this.now() - entry.at > this.maxAgeMs) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }
}
