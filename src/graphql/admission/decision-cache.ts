import { LRUCache } from 'lru-cache';

/**
 * Bytes a parsed document takes per character of query text (nodes, locations, the lexer's token
 * list that every `loc` reaches): measured at 73–104 B/char (heap after GC, 4.5k–10k-character queries).
 */
export const DOCUMENT_BYTES_PER_CHARACTER = 100;
/** What an entry costs besides any document it keeps alive (keys, small objects). */
const ENTRY_OVERHEAD_BYTES = 512;

/**
 * Estimated memory of one cached admission entry: its overhead, plus the parsed document when the
 * entry holds nodes of it (a filtered operation, rate-limited field nodes), which keep it alive.
 */
export function entryBytes(queryCharacters: number, holdsDocument: boolean): number {
  return ENTRY_OVERHEAD_BYTES + (holdsDocument ? queryCharacters * DOCUMENT_BYTES_PER_CHARACTER : 0);
}

/**
 * An LRU bounded by estimated bytes rather than entry count: a few thousand large queries, each
 * entry keeping its parsed document alive, would otherwise take hundreds of megabytes.
 */
export function byteBoundedCache<V extends { readonly bytes: number }>(maxBytes: number): LRUCache<string, V> {
  return new LRUCache<string, V>({ maxSize: maxBytes, sizeCalculation: (value, key) => Math.max(1, value.bytes + key.length) });
}
