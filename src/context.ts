import type { Principal } from './auth/principal.js';

export { anonymousPrincipal, type Principal } from './auth/principal.js';

export interface GatewayContext {
  readonly requestId: string;
  /** W3C trace context for calls the gateway makes on this request's behalf (our span as parent). */
  readonly traceparent: string;
  /** The client address (X-Forwarded-For honoured only from TRUST_PROXY). */
  readonly clientIp: string;
  readonly principal: Principal;
  /** Writes (mutations, non-safe methods) are refused for this request's tenant. */
  readonly tenantReadOnly: boolean;
  /** Signed `x-gateway-context` token for downstream calls; null where nothing goes downstream. */
  readonly contextToken: string | null;
  /** Subgraph fetches made for this request (for the request log line). */
  readonly subgraphTimings: { subgraph: string; ms: number; code?: string }[];
  /**
   * Facts about the GraphQL operation for the request log line. An object, not fields: Apollo Server
   * hands each operation a shallow copy of the context, so only shared objects reach the log line.
   */
  readonly graphql: { estimatedCost?: number };
}

/** Header names that carry identity downstream. Only the gateway may set them. */
export const IDENTITY_HEADERS = [
  'x-user-id',
  'x-tenant-id',
  'x-user-roles',
  'x-user-permissions',
  'x-subscription-tier',
  'x-demo-account',
  'x-gateway-context',
] as const;

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
  if (principal.subscription) headers['x-subscription-tier'] = principal.subscription.tier;
  if (principal.demo) headers['x-demo-account'] = 'true';
  if (context.contextToken) headers['x-gateway-context'] = context.contextToken;
  return headers;
}
