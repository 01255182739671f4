/** One tenant a user may act for, and the role they hold there (the token's `tenant_access[]`). */
export interface TenantAccess {
  readonly tenantId: string;
  readonly role: string | null;
}

export interface Subscription {
  readonly tier: string;
  readonly status: string;
  /** Seconds since the epoch; null = no end date. */
  readonly validUntil: number | null;
}

/**
 * Who is calling, as established by the gateway: never read from client headers. Every destination
 * (subgraphs, REST upstreams, streams) receives exactly this.
 */
export interface Principal {
  readonly kind: 'anonymous' | 'user' | 'api-client';
  /** User id (`sub`) or API client id; null when anonymous. */
  readonly id: string | null;
  /** The tenant this request acts for (the token's tenant, or one picked with X-Tenant-ID). */
  readonly tenantId: string | null;
  readonly roles: readonly string[];
  readonly permissions: readonly string[];
  readonly tenantAccess: readonly TenantAccess[];
  readonly subscription: Subscription | null;
  readonly demo: boolean;
  /** Read-only from the token; the tenant flag store can also make a tenant read-only. */
  readonly readOnly: boolean;
  /** Token `iat` in seconds; compared with the tenant's last subscription change. */
  readonly issuedAt: number | null;
  /** Rate-limit tier: the API key's, else the subscription tier. */
  readonly tier: string | null;
}

export function anonymousPrincipal(tenantId: string | null = null): Principal {
  return Object.freeze({
    kind: 'anonymous',
    id: null,
    tenantId,
    roles: [],
    permissions: [],
    tenantAccess: [],
    subscription: null,
    demo: false,
    readOnly: false,
    issuedAt: null,
    tier: null,
  });
}

/**
 * Token freshness: a tenant whose subscription changed at `staleBefore` (seconds) accepts only user
 * tokens issued since. A token without `iat` cannot prove that, so it is stale, unless the deployment
 * opts out (`TOKEN_FRESHNESS_ALLOW_MISSING_IAT`, for IdPs that omit `iat`). No rule (null): fresh.
 * Only user principals are concerned (a stream ticket carries its user's principal, so the original
 * token's `iat`); API keys are revoked by deleting them, and anonymous callers hold no token.
 */
export function isTokenFresh(principal: Principal, staleBefore: number | null, allowMissingIat = false): boolean {
  if (staleBefore === null || principal.kind !== 'user') return true;
  if (principal.issuedAt === null) return allowMissingIat;
  return principal.issuedAt >= staleBefore;
}
