/**
 * Who is calling and on whose behalf. Built by the gateway for every request, never read from client
 * headers; every destination (subgraphs, REST upstreams, streams) receives exactly this.
 */
export interface Principal {
  readonly kind: 'anonymous' | 'user' | 'api-client';
  /** User id or API client id; null when anonymous. */
  readonly id: string | null;
  readonly tenantId: string | null;
  readonly roles: readonly string[];
  readonly permissions: readonly string[];
}

export interface GatewayContext {
  readonly requestId: string;
  /** W3C trace context for calls the gateway makes on this request's behalf (our span as parent). */
  readonly traceparent: string;
  readonly principal: Principal;
}

export function anonymousPrincipal(tenantId: string | null = null): Principal {
  return Object.freeze({ kind: 'anonymous', id: null, tenantId, roles: [], permissions: [] });
}

/** Header names that carry identity downstream. Only the gateway may set them. */
export const IDENTITY_HEADERS = ['x-user-id', 'x-tenant-id', 'x-user-roles', 'x-user-permissions'] as const;

/** The headers every downstream call made for this request carries. One place, for every destination. */
export function downstreamHeaders(context: GatewayContext): Record<string, string> {
  const { principal } = context;
  const headers: Record<string, string> = {
    'x-request-id': context.requestId,
    traceparent: context.traceparent,
  };
  if (principal.id !== null) headers['x-user-id'] = principal.id;
  if (principal.tenantId !== null) headers['x-tenant-id'] = principal.tenantId;
  if (principal.roles.length > 0) headers['x-user-roles'] = principal.roles.join(',');
  if (principal.permissions.length > 0) headers['x-user-permissions'] = principal.permissions.join(',');
  return headers;
}
