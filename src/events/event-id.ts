/**
 * Event ids are Redis stream ids, `<ms>-<seq>`: two unsigned 64-bit integers. Clients send them back
 * (`Last-Event-ID`), so they are parsed strictly and compared as BigInt — a JavaScript number loses
 * precision above 2^53, and an id Redis refuses must never reach a Redis command.
 */

const MAX_U64 = (1n << 64n) - 1n;
const ID = /^(\d{1,20})(?:-(\d{1,20}))?$/;

/** The canonical `ms-seq` form of a valid id (`ms` alone means `ms-0`), else null. */
export function parseEventId(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const match = ID.exec(value);
  if (!match) return null;
  const ms = BigInt(match[1]!);
  const seq = BigInt(match[2] ?? '0');
  return ms <= MAX_U64 && seq <= MAX_U64 ? `${ms}-${seq}` : null;
}

/** The largest id Redis can hold: nothing can come after it. */
export const MAX_EVENT_ID = `${MAX_U64}-${MAX_U64}`;

function parts(id: string): [bigint, bigint] {
  const [ms = '0', seq = '0'] = id.split('-');
  return [BigInt(ms), BigInt(seq)];
}

/** Orders two canonical ids (as produced by Redis, the memory bus or `parseEventId`). */
export function compareIds(a: string, b: string): number {
  const [aMs, aSeq] = parts(a);
  const [bMs, bSeq] = parts(b);
  if (aMs !== bMs) return aMs < bMs ? -1 : 1;
  return aSeq === bSeq ? 0 : aSeq < bSeq ? -1 : 1;
}
