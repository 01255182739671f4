/**
 * The contract of `x-gateway-context`: a short-lived JWT the gateway signs per caller and sends on every downstream call,
 * so a service can verify (against `/.well-known/jwks.json`) that a call came through the gateway and
 * read the caller from it instead of trusting plain headers.
 */
export const CONTEXT_TOKEN_ISSUER = 'federated-gateway';
export const CONTEXT_TOKEN_AUDIENCE = 'gateway-services';
export const CONTEXT_TOKEN_TTL_SECONDS = 60;
/**
 * The gateway reuses a caller's token for this long after signing it, so every token it sends has at
 * least TTL − REUSE (15 s) left: room for clock skew and a slow call.
 */
export const CONTEXT_TOKEN_REUSE_SECONDS = 45;

export interface ContextTokenClaims {
  sub: string;
  principal_kind: 'anonymous' | 'user' | 'api-client';
  tenant_id: string | null;
  roles: string[];
  permissions: string[];
  subscription_tier: string | null;
  demo: boolean;
  /**
   * No longer signed: the token describes the caller and is reused across its requests. The request
   * id is the `x-request-id` header sent alongside. Kept optional for tokens of older gateways.
   */
  request_id?: string;
}
