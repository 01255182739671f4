import type { IncomingHttpHeaders } from 'node:http';
import { namedByConnection, HOP_BY_HOP_SET } from './forwarding.js';

/** Header fields as Fastify's `reply.getHeaders()` gives them. */
type OwnHeaders = Readonly<Record<string, string | number | readonly string[] | undefined>>;

/**
 * The head of a proxied response, as the flat `[name, value, …]` list `writeHead` takes (no object
 * copy, repeated fields such as `Set-Cookie` kept apart): the gateway's own fields first — whatever
 * the pipeline set on the reply: `@fastify/helmet`'s security headers, `X-Request-Id`, the rate-limit
 * fields, CORS, `Retry-After`, a drain's `Connection: close` — then the upstream's, without its
 * hop-by-hop fields.
 *
 * Where both name a field, the gateway's wins: an upstream must not weaken the security headers
 * (say `X-Frame-Options: ALLOWALL`), replace the request id the gateway logged, or misstate the
 * caller's rate limit. `Vary` is the exception: both lists are merged, since the response depends
 * on what either says (the gateway's `Origin` and, say, the upstream's `Accept-Encoding`).
 */
export function responseHead(own: OwnHeaders, upstream: IncomingHttpHeaders, closeConnection: boolean): string[] {
  const head: string[] = [];
  for (const name in own) {
    const value = own[name];
    if (value === undefined || (name === 'vary' && upstream.vary !== undefined)) continue;
    push(head, name, value);
  }
  const named = namedByConnection(upstream.connection);
  for (const name in upstream) {
    if (HOP_BY_HOP_SET.has(name) || named?.has(name)) continue;
    const value = upstream[name];
    if (value === undefined) continue;
    if (name === 'vary') head.push('vary', mergeVary(own.vary, value));
    else if (own[name] === undefined) push(head, name, value);
  }
  // An HTTP/1 connection cannot carry another request until the current one's body has been read.
  if (closeConnection && own.connection === undefined) head.push('connection', 'close');
  return head;
}

function push(head: string[], name: string, value: string | number | readonly string[]): void {
  if (typeof value === 'object') for (const item of value) head.push(name, item);
  else head.push(name, typeof value === 'string' ? value : String(value));
}

/** Both field lists, each member once (case-insensitively); `*` alone if either says `*`. */
function mergeVary(own: OwnHeaders[string], upstream: string | string[]): string {
  if (own === undefined) return typeof upstream === 'object' ? upstream.join(', ') : upstream;
  const members = new Map<string, string>();
  for (const list of [own, upstream]) {
    for (const part of (typeof list === 'object' ? list.join(',') : String(list)).split(',')) {
      const member = part.trim();
      if (member !== '' && !members.has(member.toLowerCase())) members.set(member.toLowerCase(), member);
    }
  }
  return members.has('*') ? '*' : [...members.values()].join(', ');
}
