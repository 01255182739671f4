import { describe, expect, it } from 'vitest';
import { DOCUMENT_BYTES_PER_CHARACTER, byteBoundedCache, entryBytes } from '../../src/graphql/admission/decision-cache.js';

describe('admission caches are bounded by memory, not entry count', () => {
  it('2,000 distinct 4.5k-character queries whose decisions keep their documents stay within the budget', () => {
    const budget = 64 * 1024 * 1024;
    const cache = byteBoundedCache<{ bytes: number }>(budget);
    for (let i = 0; i < 2_000; i++) cache.set(`query-${i}\0u|[]`, { bytes: entryBytes(4_500, true) });
    // Each one keeps ~450 KB alive: only the most recent ~150 fit, not 2,000 (~900 MB).
    expect(cache.calculatedSize).toBeLessThanOrEqual(budget);
    expect(cache.size).toBe(Math.floor(budget / (entryBytes(4_500, true) + 'query-1999\0u|[]'.length)));
    expect(cache.has('query-1999\0u|[]')).toBe(true);
    expect(cache.has('query-0\0u|[]')).toBe(false);
  });

  it('an entry that keeps no document costs a small constant whatever the query length', () => {
    expect(entryBytes(4_500, false)).toBe(entryBytes(0, false));
    expect(entryBytes(4_500, true) - entryBytes(0, true)).toBe(4_500 * DOCUMENT_BYTES_PER_CHARACTER);
  });
});
