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

/**
 * Copies the headers that `keep` accepts and that are not hop-by-hop. One pass that builds a fresh
 * object, instead of spreading and then deleting: `delete` turns the object into a slow dictionary,
 * and this runs twice per proxied request.
 */
function copyHeaders<T extends IncomingHttpHeaders>(headers: T, keep?: (name: string) => boolean): T {
  const named = namedByConnection(headers.connection);
  const out: IncomingHttpHeaders = {};
  for (const name in headers) {
    if (!Object.prototype.hasOwnProperty.call(headers, name)) continue;
    if (HOP_BY_HOP_SET.has(name) || named?.has(name) || (keep && !keep(name))) continue;
    // A `__proto__` field must stay a field, as spreading would keep it, not become the prototype.
    if (name === '__proto__') Object.defineProperty(out, name, { value: headers[name], enumerable: true, writable: true, configurable: true });
    else out[name] = headers[name];
  }
  return out as T;
}

/** Request fields the client may pass on: not the gateway's own (GATEWAY_OWNED, every `x-forwarded-*`). */
function clientMayForward(name: string): boolean {
  return !GATEWAY_OWNED_SET.has(name) && !name.startsWith('x-forwarded-');
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
 */
export function assertValidHost(request: FastifyRequest): void {
  const host = request.host;
  if (host !== '' && !isValidHost(host)) throw new GatewayError('INVALID_HOST');
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
 * What the upstream is told about the client, from Fastify's view only (TRUST_PROXY decides how far
 * X-Forwarded-For is believed): X-Forwarded-For lists the trusted chain, client first, ending with the
 * gateway's own peer — whatever the client claimed beyond the first untrusted hop is dropped; Forwarded
 * (RFC 7239) says the same, with the client's host and protocol on the first element; X-Real-IP is the
 * client. The host was validated first (assertValidHost), so it cannot break out of its quotes.
 */
export function forwardedRequestHeaders(request: FastifyRequest, headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out = copyHeaders(headers, clientMayForward);

  // `request.ips` runs from the peer outwards, as far as proxies are trusted; it is unset without TRUST_PROXY.
  const ips = request.ips;
  const chain =
    ips === undefined
      ? [isIP(request.ip ?? '') ? request.ip : 'unknown']
      : [...ips].reverse().map((address) => (isIP(address ?? '') ? address : 'unknown'));
  const client = chain[0]!;
  // A trusted proxy's X-Forwarded-Proto is believed only when it names a protocol this hop could carry.
  const proto = request.protocol === 'https' || request.protocol === 'http' ? request.protocol : ownProtocol(request);
  const host = isValidHost(request.host) ? request.host : '';

  out['x-forwarded-for'] = chain.join(', ');
  out['x-forwarded-proto'] = proto;
  if (host) out['x-forwarded-host'] = host;
  if (client !== 'unknown') out['x-real-ip'] = client;
  out.forwarded = chain
    .map((address, i) => (i === 0 ? `for=${forwardedNode(address)};proto=${proto}${host ? `;host="${host}"` : ''}` : `for=${forwardedNode(address)}`))
    .join(', ');
  Object.assign(out, downstreamHeaders(request.gateway));
  return out;
}
