import { SignJWT, type CryptoKey } from 'jose';

/** The issuer and audience every benchmark's gateway is configured to accept. */
export const BENCH_ISSUER = 'https://idp.bench.example';
export const BENCH_AUDIENCE = 'bench-api';

/**
 * The `i`-th distinct RS256 token of a benchmark: user `u-<i>` of one of ten tenants, with the claims
 * the gateway's tenant checks want, and `permission` granted.
 */
export function mintBenchToken(privateKey: CryptoKey, i: number, permission: string): Promise<string> {
  return new SignJWT({
    tenant_id: `t${i % 10}`,
    roles: ['viewer'],
    permissions: [permission],
    tenant_access: [{ tenant_id: `t${i % 10}`, role: 'viewer' }],
    subscription: { tier: 'pro', status: 'active' },
  })
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT' })
    .setSubject(`u-${i}`)
    .setIssuer(BENCH_ISSUER)
    .setAudience(BENCH_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime('2h')
    .sign(privateKey);
}

/** The gateway settings that verify `mintBenchToken`'s tokens against `publicKey` (SPKI PEM). */
export function benchVerifierEnv(publicKey: string): Record<string, string> {
  return { JWT_PUBLIC_KEY: publicKey, JWT_ALGORITHMS: 'RS256', JWT_ISSUER: BENCH_ISSUER, JWT_AUDIENCE: BENCH_AUDIENCE };
}
