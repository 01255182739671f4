import { randomBytes } from 'node:crypto';

// W3C Trace Context (https://www.w3.org/TR/trace-context/): version 00, 16-byte trace id, 8-byte parent id.
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ALL_ZERO = /^0+$/;

/**
 * The `traceparent` the gateway sends downstream: the caller's trace continues (same trace id and
 * flags) with the gateway's own span as parent; without a valid incoming header a new trace starts.
 * Kept dependency-free so tracing costs nothing when no OpenTelemetry exporter is configured.
 */
export function childTraceparent(incoming: string | string[] | undefined): string {
  const match = typeof incoming === 'string' ? TRACEPARENT.exec(incoming.trim()) : null;
  const spanId = randomBytes(8).toString('hex');
  if (match && !ALL_ZERO.test(match[1]!) && !ALL_ZERO.test(match[2]!)) {
    return `00-${match[1]}-${spanId}-${match[3]}`;
  }
  return `00-${randomBytes(16).toString('hex')}-${spanId}-01`;
}
