import type { FastifyRequest } from 'fastify';
import { GatewayError } from '../errors.js';

/**
 * Paths that different components could read differently are refused before routing decisions are
 * acted on: `.`/`..` segments (raw or percent-encoded), encoded slashes or backslashes, raw
 * backslashes, empty segments (`//`), NUL, double encoding (`%25`), `..;` and malformed
 * percent-encoding. What remains is forwarded
 * exactly as checked, so the gateway never authorizes one path and forwards another.
 */
const SUSPICIOUS = /\\|%5c|%2f|%00|%25|\/\/|%2e/i;
/** `.`, `..` and their `;param` forms (`..;/`), which Java servers normalise to `..`. */
const DOT_SEGMENT = /^\.\.?(;.*)?$/;

/** A request target without its query string (tokens and tickets travel there). */
export function pathOf(url: string): string {
  const queryAt = url.indexOf('?');
  return queryAt === -1 ? url : url.slice(0, queryAt);
}

export function isAmbiguousPath(rawUrl: string): boolean {
  const path = pathOf(rawUrl);
  if (!path.startsWith('/')) return true;
  if (SUSPICIOUS.test(path)) return true;
  // Without `%` the path decodes to itself, and without `.` no segment is a dot segment: most
  // paths are done here, without a decoded copy and its segments.
  if (path.indexOf('%') === -1 && path.indexOf('.') === -1) return false;
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return true;
  }
  return decoded.split('/').some((segment) => DOT_SEGMENT.test(segment));
}

/** Pipeline stage: refuses an ambiguous path before anything acts on it. */
export function guardPath(request: FastifyRequest): void {
  if (isAmbiguousPath(request.raw.url ?? '/')) throw new GatewayError('PATH_NOT_ALLOWED');
}
