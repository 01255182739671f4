/**
 * The contract of `x-gateway-context`: a short-lived JWT the gateway signs for every downstream call,
 * so a service can verify (against `/.well-known/jwks.json`) that a call came through the gateway and
 * read the caller from it instead of trusting plain headers.
 */
export const CONTEXT_TOKEN_ISSUER = 'federated-gateway';
export const CONTEXT_TOKEN_AUDIENCE = 'gateway-services';
export const CONTEXT_TOKEN_TTL_SECONDS = 60;

export interface ContextTokenClaims {
  sub: string;
  principal_kind: 'anonymous' | 'user' | 'api-client';
  tenant_id: string | null;
  roles: string[];
  permissions: string[];
  subscription_tier: string | null;
  demo: boolean;
  request_id: string;
}
