import { randomFillSync } from 'node:crypto';

// W3C Trace Context (https://www.w3.org/TR/trace-context/): version 00, 16-byte trace id, 8-byte parent id.
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ALL_ZERO = /^0+$/;

/**
 * Random ids drawn from one pooled buffer, refilled by the CSPRNG when used up (as Node does for
 * `randomUUID`): two `randomBytes` calls per request, each a round trip into C++ and a fresh
 * buffer, were ~3-5% of the gateway's CPU on REST passthrough.
 */
const POOL_SIZE = 4096;
const pool = Buffer.alloc(POOL_SIZE);
let offset = POOL_SIZE;

function randomHex(bytes: number): string {
  if (offset + bytes > POOL_SIZE) {
    randomFillSync(pool);
    offset = 0;
  }
  const hex = pool.toString('hex', offset, offset + bytes);
  offset += bytes;
  return hex;
}

/**
 * The `traceparent` the gateway sends downstream: the caller's trace continues (same trace id and
 * flags) with the gateway's own span as parent; without a valid incoming header a new trace starts.
 * Kept dependency-free so tracing costs nothing when no OpenTelemetry exporter is configured.
 */
export function childTraceparent(incoming: string | string[] | undefined): string {
  const match = typeof incoming === 'string' ? TRACEPARENT.exec(incoming.trim()) : null;
  if (match && !ALL_ZERO.test(match[1]!) && !ALL_ZERO.test(match[2]!)) {
    return `00-${match[1]}-${randomHex(8)}-${match[3]}`;
  }
  // Trace id and span id in one draw: 24 random bytes, the first 16 the trace, the last 8 the span.
  const ids = randomHex(24);
  return `00-${ids.slice(0, 32)}-${ids.slice(32)}-01`;
}
