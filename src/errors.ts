import { GraphQLError } from 'graphql';

/**
 * Every error the gateway itself produces, defined once: a stable machine-readable code, its HTTP
 * status and a safe, generic title. REST-style routes render them as RFC 9457 problem+json, the
 * GraphQL endpoint as GraphQL errors with `extensions.code`.
 */
export const ERRORS = {
  BAD_REQUEST: { status: 400, title: 'The request is malformed' },
  UNAUTHENTICATED: { status: 401, title: 'Authentication is required' },
  INVALID_TOKEN: { status: 401, title: 'The access token is invalid' },
  TOKEN_EXPIRED: { status: 401, title: 'The access token has expired' },
  TOKEN_STALE: { status: 401, title: 'The subscription changed after this token was issued; sign in again' },
  INVALID_API_KEY: { status: 401, title: 'The API key is invalid or revoked' },
  FORBIDDEN: { status: 403, title: 'The caller lacks the required role or permission' },
  TENANT_ACCESS_DENIED: { status: 403, title: 'The caller has no access to the requested tenant' },
  TENANT_READ_ONLY: { status: 403, title: 'The tenant is read-only' },
  SUBSCRIPTION_EXPIRED: { status: 403, title: 'The tenant subscription has expired' },
  RATE_LIMITED: { status: 429, title: 'Too many requests' },
  TOO_MANY_STREAMS: { status: 429, title: 'Too many open event streams for this tenant or instance' },
  RATE_LIMIT_UNAVAILABLE: { status: 503, title: 'Rate limiting is unavailable; try again shortly' },
  EVENTS_UNAVAILABLE: { status: 503, title: 'The event stream cannot be opened now; try again shortly' },
  // Redis unreachable and the feature's policy (README, "Failure behaviour") refuses rather than guesses.
  AUTH_UNAVAILABLE: { status: 503, title: 'The credentials cannot be checked right now; try again shortly' },
  TENANT_FLAGS_UNAVAILABLE: { status: 503, title: "The tenant's flags cannot be checked right now; try again shortly" },
  TRUSTED_DOCUMENTS_UNAVAILABLE: { status: 503, title: 'Trusted documents cannot be checked right now; try again shortly' },
  NOT_FOUND: { status: 404, title: 'No route matches this request' },
  METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed on this route' },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'The request body is too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported content type' },
  SUPERGRAPH_NOT_LOADED: { status: 503, title: 'No valid supergraph is loaded yet' },
  SHUTTING_DOWN: { status: 503, title: 'This instance is shutting down; retry on another' },
  PATH_NOT_ALLOWED: { status: 400, title: 'The request path is not allowed' },
  UPSTREAM_UNAVAILABLE: { status: 502, title: 'The upstream service could not be reached' },
  UPSTREAM_TIMEOUT: { status: 504, title: 'The upstream service did not answer in time' },
  NO_HEALTHY_UPSTREAM: { status: 503, title: 'No healthy instance of the upstream service' },
  CIRCUIT_OPEN: { status: 503, title: 'The upstream service is failing; requests are paused' },
  UPSTREAM_BUSY: { status: 503, title: 'Every connection to the upstream service is in use; retry shortly' },
  TOO_MANY_CONCURRENT_REQUESTS: { status: 429, title: 'Too many requests in flight to this service for this caller or tenant' },
  REQUEST_TIMEOUT: { status: 408, title: 'The request did not arrive in time' },
  INVALID_HOST: { status: 400, title: 'The Host is not a valid host[:port]' },
  HEADERS_TOO_LARGE: { status: 431, title: 'The request header fields are too large' },
  INTERNAL_SERVER_ERROR: { status: 500, title: 'Internal server error' },
  // GraphQL admission (src/graphql/admission): refusals of a whole operation answer 400/403 without
  // data; field-level denials (UNAUTHORIZED_FIELD_OR_TYPE, RATE_LIMITED) travel in a 200 with partial data.
  GRAPHQL_VALIDATION_FAILED: { status: 400, title: 'The operation is not valid against the schema' },
  OPERATION_RESOLUTION_FAILURE: { status: 400, title: 'The operation to run could not be determined' },
  OPERATION_NOT_TRUSTED: { status: 400, title: 'Only trusted (persisted) operations are accepted' },
  QUERY_TOO_LARGE: { status: 400, title: 'The query text is too long' },
  TOO_MANY_TOKENS: { status: 400, title: 'The query has too many tokens' },
  OPERATION_TOO_DEEP: { status: 400, title: 'The operation is nested too deeply' },
  TOO_MANY_ALIASES: { status: 400, title: 'The operation has too many aliases' },
  TOO_MANY_DIRECTIVES: { status: 400, title: 'The operation has too many directives' },
  TOO_MANY_ROOT_FIELDS: { status: 400, title: 'The operation selects too many root fields' },
  OPERATION_TOO_LARGE: { status: 400, title: 'The operation expands to too many field selections' },
  OPERATION_TOO_COMPLEX: { status: 400, title: "The operation's estimated cost is over the limit" },
  UNAUTHORIZED_FIELD_OR_TYPE: { status: 403, title: 'Unauthorized field or type' },
  // Subgraph failures surface inside GraphQL responses (partial data), not as HTTP statuses.
  SUBGRAPH_UNAVAILABLE: { status: 502, title: 'The subgraph could not be reached' },
  SUBGRAPH_TIMEOUT: { status: 504, title: 'The subgraph did not answer in time' },
  SUBGRAPH_BAD_RESPONSE: { status: 502, title: 'The subgraph answered with an invalid response' },
  SUBGRAPH_HTTP_ERROR: { status: 502, title: 'The subgraph answered with an HTTP error' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERRORS;

export class GatewayError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    /** Safe to show the client: never internal details. */
    readonly detail: string = ERRORS[code].title,
  ) {
    super(detail);
    this.status = ERRORS[code].status;
  }

  /** Any error thrown inside a request, as the gateway error the client will see. Unknown errors are masked. */
  static from(error: unknown): GatewayError {
    if (error instanceof GatewayError) return error;
    const { code, statusCode } = (error ?? {}) as { code?: string; statusCode?: number };
    const known = code ? FASTIFY_ERRORS[code] : undefined;
    if (known) return new GatewayError(known, (code && FASTIFY_DETAILS[code]) ?? ERRORS[known].title);
    if (statusCode === 404) return new GatewayError('NOT_FOUND');
    if (statusCode === 405) return new GatewayError('METHOD_NOT_ALLOWED');
    if (statusCode !== undefined && statusCode >= 400 && statusCode < 500) return new GatewayError('BAD_REQUEST');
    return new GatewayError('INTERNAL_SERVER_ERROR');
  }
}

/** Fastify's own error codes (raised while reading the request) mapped onto ours. */
const FASTIFY_ERRORS: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'BAD_REQUEST',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
  FST_ERR_CTP_EMPTY_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
};

const FASTIFY_DETAILS: Record<string, string> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'The request body is not valid JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'The request body is empty but its content type is JSON',
};

export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  instance?: string;
  requestId: string;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export function problemDetails(error: GatewayError, requestId: string, instance?: string): ProblemDetails {
  return {
    type: `urn:gateway:error:${error.code.toLowerCase().replace(/_/g, '-')}`,
    title: ERRORS[error.code].title,
    status: error.status,
    detail: error.detail,
    code: error.code,
    ...(instance === undefined ? {} : { instance }),
    requestId,
  };
}

/** RFC 6750 challenge for 401s: no error code when no credentials were sent, else the reason. */
export function wwwAuthenticate(error: GatewayError): string | null {
  if (error.status !== 401) return null;
  if (error.code === 'UNAUTHENTICATED') return 'Bearer realm="gateway"';
  const description = error.detail.replace(/["\\]/g, '');
  return `Bearer realm="gateway", error="invalid_token", error_description="${description}"`;
}

export function graphqlErrorBody(error: GatewayError, requestId: string) {
  return { errors: [{ message: error.detail, extensions: { code: error.code, requestId } }] };
}

/**
 * The one rendering of a gateway error inside Apollo Server: `extensions.code` from the catalogue,
 * and, for a refusal of the whole operation, the HTTP status Apollo answers with. Field-level errors
 * (`path` given) carry no status: the response is a 200 with partial data.
 */
export function gatewayGraphQLError(code: ErrorCode, detail: string = ERRORS[code].title, path?: readonly (string | number)[]): GraphQLError {
  if (path) return new GraphQLError(detail, { path, extensions: { code } });
  return new GraphQLError(detail, { extensions: { code, http: { status: ERRORS[code].status } } });
}
