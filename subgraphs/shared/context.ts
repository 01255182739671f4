import { GraphQLError } from 'graphql';
import { jwtVerify, type JWTVerifyGetKey } from 'jose';
import {
  CONTEXT_TOKEN_AUDIENCE,
  CONTEXT_TOKEN_ISSUER,
  type ContextTokenClaims,
} from '../../src/auth/context-token.js';

/** What the gateway told this subgraph about the caller, from its signed `x-gateway-context`. */
export interface SubgraphContext {
  readonly tenantId: string | null;
  readonly userId: string | null;
  readonly roles: readonly string[];
  readonly permissions: readonly string[];
  readonly subscriptionTier: string | null;
  readonly demo: boolean;
  readonly requestId: string | null;
  readonly traceparent: string | null;
}

export class UntrustedCallError extends Error {
  override name = 'UntrustedCallError';
}

/**
 * Verifies that a call came through the gateway (its `x-gateway-context` token, signed with a key
 * from the gateway's JWKS) and reads the caller from the token, never from plain headers.
 */
export async function contextFromGatewayToken(
  token: string | undefined,
  gatewayKey: JWTVerifyGetKey,
  traceparent: string | undefined,
  requestId?: string,
): Promise<SubgraphContext> {
  if (!token) throw new UntrustedCallError('missing x-gateway-context');
  let claims: ContextTokenClaims;
  try {
    const { payload } = await jwtVerify(token, gatewayKey, {
      issuer: CONTEXT_TOKEN_ISSUER,
      audience: CONTEXT_TOKEN_AUDIENCE,
      algorithms: ['EdDSA', 'ES256'],
      requiredClaims: ['sub', 'exp'],
    });
    claims = payload as unknown as ContextTokenClaims;
  } catch (error) {
    throw new UntrustedCallError(`invalid x-gateway-context: ${(error as Error).message}`);
  }
  return {
    tenantId: claims.tenant_id ?? null,
    userId: claims.principal_kind === 'anonymous' ? null : claims.sub,
    roles: claims.roles ?? [],
    permissions: claims.permissions ?? [],
    subscriptionTier: claims.subscription_tier ?? null,
    demo: claims.demo === true,
    // The token is per caller, reused across requests: the request id comes with the call.
    requestId: requestId ?? claims.request_id ?? null,
    traceparent: traceparent ?? null,
  };
}

/** Every demo subgraph is multi-tenant: no tenant, no data. */
export function requireTenant(context: SubgraphContext): string {
  if (!context.tenantId) {
    throw new GraphQLError('This subgraph serves tenant data only; no tenant in the request', {
      extensions: { code: 'TENANT_REQUIRED' },
    });
  }
  return context.tenantId;
}

export function requireUser(context: SubgraphContext): string {
  if (!context.userId) {
    throw new GraphQLError('Sign in to do this', { extensions: { code: 'UNAUTHENTICATED' } });
  }
  return context.userId;
}

/** Per-tenant rows: a tenant's lookups can only ever see its own rows. */
export class TenantTable<Row extends { id: string }> {
  private readonly rows = new Map<string, Map<string, Row>>();

  constructor(seed: Record<string, readonly Row[]>) {
    for (const [tenant, rows] of Object.entries(seed)) {
      this.rows.set(tenant, new Map(rows.map((row) => [row.id, { ...row }])));
    }
  }

  all(tenant: string): Row[] {
    return [...(this.rows.get(tenant)?.values() ?? [])];
  }

  get(tenant: string, id: string): Row | null {
    return this.rows.get(tenant)?.get(id) ?? null;
  }

  put(tenant: string, row: Row): Row {
    let table = this.rows.get(tenant);
    if (!table) this.rows.set(tenant, (table = new Map()));
    table.set(row.id, row);
    return row;
  }
}

