import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { FastifyRequest } from 'fastify';
import { downstreamHeaders } from '../context.js';
import { GatewayError } from '../errors.js';

/** RFC 9110 §7.6.1 hop-by-hop fields: they describe one connection and are never forwarded. */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade'];

/**
 * Request fields that are the gateway's to set, or nobody's:
 * - `expect`: the gateway answers `100-continue` itself (expect-continue.ts); undici refuses to send
 *   it, and a refusal there is not the upstream's failure.
 * - client-claimed addresses: the upstream gets the gateway's view of the client (X-Real-IP,
 *   X-Forwarded-For, Forwarded), never the client's own claim.
 * - method overrides: a request authorized as a GET must not become a DELETE in the upstream's framework.
 * Every `x-forwarded-*` field goes too; the gateway sets its own below.
 */
const GATEWAY_OWNED = [
  'expect',
  'forwarded',
  'x-real-ip',
  'true-client-ip',
  'x-client-ip',
  'client-ip',
  'cf-connecting-ip',
  'fastly-client-ip',
  'x-cluster-client-ip',
  'x-original-forwarded-for',
  'x-http-method-override',
  'x-method-override',
  'x-http-method',
];

export const HOP_BY_HOP_SET: ReadonlySet<string> = new Set(HOP_BY_HOP);
const GATEWAY_OWNED_SET = new Set(GATEWAY_OWNED);

/** The headers named by `Connection`, lower-cased (RFC 9110 §7.6.1: they belong to this hop only). */
function connectionOptions(value: string | string[] | undefined): string[] {
  const values = value === undefined ? [] : Array.isArray(value) ? value : [value];
  return values.flatMap((v) => v.split(',')).map((token) => token.trim().toLowerCase()).filter((token) => token !== '');
}

const NAMES_CLOSE: ReadonlySet<string> = new Set(['close']);

/**
 * Headers the `Connection` field names, beyond the hop-by-hop ones dropped anyway; null for none.
 * The usual values (`keep-alive`, `close`) get no set built per message.
 */
export function namedByConnection(value: string | string[] | undefined): ReadonlySet<string> | null {
  if (value === undefined) return null;
  if (typeof value === 'string') {
    const plain = value.length <= 10 ? value.toLowerCase() : '';
    // `keep-alive` is hop-by-hop already; `close` names only itself.
    if (plain === 'keep-alive') return null;
    if (plain === 'close') return NAMES_CLOSE;
  }
  return new Set(connectionOptions(value));
}

const REG_NAME = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+$/;
const IP_FUTURE = /^v[0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+$/;

/**
 * RFC 3986 `host [ ":" port ]` (an IP literal in brackets, or a reg-name, which covers IPv4), with a
 * non-empty host (RFC 9110 §4.2.1) and a port up to 65535. Nothing else can reach a forwarding
 * header: no quotes, backslashes, spaces, `/` or `@`.
 */
export function isValidHost(value: string): boolean {
  let port: string;
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    if (close === -1) return false;
    const literal = value.slice(1, close);
    if (!(isIP(literal) === 6 && !literal.includes('%')) && !IP_FUTURE.test(literal)) return false;
    const rest = value.slice(close + 1);
    if (rest === '') return true;
    if (!rest.startsWith(':')) return false;
    port = rest.slice(1);
  } else {
    const colon = value.indexOf(':');
    const name = colon === -1 ? value : value.slice(0, colon);
    if (!REG_NAME.test(name)) return false;
    if (colon === -1) return true;
    port = value.slice(colon + 1);
  }
  return /^\d{0,5}$/.test(port) && Number(port) <= 65535;
}

/**
 * The host the client asked for, as Fastify sees it (`Host`, or a trusted proxy's X-Forwarded-Host):
 * refused with 400 INVALID_HOST unless it is a well-formed host[:port], as Envoy and nginx do.
 * Returns it ('' for none).
 */
export function assertValidHost(request: FastifyRequest): string {
  const host = request.host;
  if (host !== '' && !isValidHost(host)) throw new GatewayError('INVALID_HOST');
  return host;
}

function ownProtocol(request: FastifyRequest): 'http' | 'https' {
  return (request.raw.socket as TLSSocket | undefined)?.encrypted ? 'https' : 'http';
}

/** An address as a Forwarded node (RFC 7239 §6): IPv6 quoted in brackets, anything unparsable `unknown`. */
function forwardedNode(address: string): string {
  const family = isIP(address);
  if (family === 6) return `"[${address}]"`;
  return family === 4 ? address : 'unknown';
}

/**
 * The request fields for the upstream, as the flat `[name, value, …]` list undici takes (no object
 * built and then walked by key), in one pass over the client's fields:
 * - the client's fields, minus hop-by-hop ones (and those `Connection` names), the gateway's own
 *   (GATEWAY_OWNED, every `x-forwarded-*`) and those the request context sets below;
 * - what the upstream is told about the client, from Fastify's view only (TRUST_PROXY decides how
 *   far X-Forwarded-For is believed): X-Forwarded-For lists the trusted chain, client first, ending
 *   with the gateway's own peer — whatever the client claimed beyond the first untrusted hop is
 *   dropped; Forwarded (RFC 7239) says the same, with the client's host and protocol on the first
 *   element; X-Real-IP is the client;
 * - the request context's identity, trace and context-token fields (context.ts).
 *
 * `host` is the client's Host as validated by assertValidHost ('' for none), so it cannot break out of
 * its quotes. `upstreamHost` replaces the client's Host when given (REST); null keeps it (WebSocket,
 * where @fastify/http-proxy sets the upstream's).
 */
export function forwardedHeaderList(request: FastifyRequest, headers: IncomingHttpHeaders, host: string, upstreamHost: string | null): string[] {
  const own = downstreamHeaders(request.gateway);
  const named = namedByConnection(headers.connection);
  const out: string[] = [];
  for (const name in headers) {
    if (
      HOP_BY_HOP_SET.has(name) ||
      GATEWAY_OWNED_SET.has(name) ||
      name.startsWith('x-forwarded-') ||
      (own[name] !== undefined && Object.hasOwn(own, name)) ||
      named?.has(name) ||
      (upstreamHost !== null && name === 'host') ||
      !Object.prototype.hasOwnProperty.call(headers, name)
    ) {
      continue;
    }
    const value = headers[name];
    if (typeof value === 'string') out.push(name, value);
    else if (value !== undefined) for (const item of value) out.push(name, item);
  }
  if (upstreamHost !== null) out.push('host', upstreamHost);

  // A trusted proxy's X-Forwarded-Proto is believed only when it names a protocol this hop could carry.
  const proto = request.protocol === 'https' || request.protocol === 'http' ? request.protocol : ownProtocol(request);
  const first = `;proto=${proto}${host ? `;host="${host}"` : ''}`;
  // `request.ips` runs from the peer outwards, as far as proxies are trusted; it is unset without TRUST_PROXY.
  const ips = request.ips;
  let client: string;
  if (ips === undefined) {
    // One hop, the usual case: no chain to build.
    client = isIP(request.gateway.clientIp) ? request.gateway.clientIp : 'unknown';
    out.push('x-forwarded-for', client, 'forwarded', `for=${forwardedNode(client)}${first}`);
  } else {
    const chain = [...ips].reverse().map((address) => (isIP(address ?? '') ? address : 'unknown'));
    client = chain[0]!;
    out.push(
      'x-forwarded-for',
      chain.join(', '),
      'forwarded',
      chain.map((address, i) => `for=${forwardedNode(address)}${i === 0 ? first : ''}`).join(', '),
    );
  }
  out.push('x-forwarded-proto', proto);
  if (host) out.push('x-forwarded-host', host);
  if (client !== 'unknown') out.push('x-real-ip', client);
  for (const name in own) out.push(name, own[name]!);
  return out;
}

/** The same fields as an object, for @fastify/http-proxy's WebSocket handshake. */
export function forwardedRequestHeaders(request: FastifyRequest, headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const host = isValidHost(request.host) ? request.host : '';
  const list = forwardedHeaderList(request, headers, host, null);
  const out: IncomingHttpHeaders = {};
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i]!;
    const value = list[i + 1]!;
    const previous = out[name];
    // A `__proto__` field must stay a field, not become the prototype.
    if (name === '__proto__') Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
    else out[name] = previous === undefined ? value : ([] as string[]).concat(previous, value);
  }
  return out;
}
