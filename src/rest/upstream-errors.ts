/**
 * Whose fault a failed upstream exchange was. Only the upstream's own failures may count toward its
 * circuit breaker and passive ejection; a request undici refuses to send is the request's problem,
 * and anything unrecognised is the gateway's to investigate, not a reason to shed the service.
 * (Client aborts never get here: their exchanges are cancelled, see exchange.ts.)
 *
 * - `timeout`: connect, response headers or response body too slow → 504, counted;
 * - `upstream`: refused, reset, unreachable, or not speaking valid HTTP → 502, counted;
 * - `rejected`: undici refused the request as built from the client's (e.g. a header it does not
 *   support) → 400, not counted;
 * - `gateway`: anything else (the pool closing during shutdown, a bug) → 502, not counted.
 */
export type UpstreamFailure = 'timeout' | 'upstream' | 'rejected' | 'gateway';

const TIMEOUT = new Set([
  'FST_REPLY_FROM_TIMEOUT',
  'FST_REPLY_FROM_GATEWAY_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);

const UPSTREAM = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_HEADERS_OVERFLOW',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_RES_EXCEEDED_MAX_SIZE',
  'FST_REPLY_FROM_BAD_GATEWAY',
]);

const REJECTED = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED', 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH']);

const UNREPORTED_PARSER_ERROR = 'HPE_UNREPORTED';

/** Error codes along the cause chain: undici's error may wrap a socket error. */
export function errorCodes(error: unknown): string[] {
  const codes: string[] = [];
  for (let current = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
    // undici 7 looks its parser error's code up by number in a table keyed by name, so the code is
    // always missing: the name still says the upstream's response was not valid HTTP.
    else if (current.name === 'HTTPParserError') codes.push(UNREPORTED_PARSER_ERROR);
  }
  return codes;
}

export function classifyUpstreamError(error: unknown): UpstreamFailure {
  const codes = errorCodes(error);
  if (codes.some((code) => REJECTED.has(code))) return 'rejected';
  if (codes.some((code) => TIMEOUT.has(code))) return 'timeout';
  // HPE_*: llhttp could not parse the upstream's response; TLS and certificate errors: its endpoint.
  if (codes.some((code) => UPSTREAM.has(code) || code.startsWith('HPE_') || /^(ERR_TLS_|ERR_SSL_)|CERT/.test(code))) return 'upstream';
  return 'gateway';
}
