import { describe, expect, it } from 'vitest';
import { ConfiguredApiKeys } from '../../src/auth/api-keys.js';
import { Authenticator } from '../../src/auth/authenticator.js';
import { ContextSigner } from '../../src/auth/context-signer.js';
import { loadKeySources } from '../../src/auth/key-sources.js';
import { anonymousPrincipal, type Principal } from '../../src/auth/principal.js';
import { TenantGuard } from '../../src/auth/tenant-guard.js';
import { TokenVerifier } from '../../src/auth/token-verifier.js';
import { loadConfig } from '../../src/config/load.js';
import { RateLimiter } from '../../src/ratelimit/limiter.js';
import { RATE_LIMIT_DEFAULTS } from '../../src/ratelimit/policy.js';
import { MemoryRateLimitStore } from '../../src/ratelimit/store.js';
import { MemoryTenantFlagStore } from '../../src/stores/tenant-flags.js';
import { hs256Bearer } from '../helpers/hs256.js';

/**
 * What the pipeline asks on every request is answered from memory without a promise once known:
 * the pipeline then runs its stages without waiting (pipeline/stages.ts). The first answer may wait
 * (a signature check, a signature); the ones after it must not.
 */
const SECRET = 'a-test-secret-that-is-long-enough-0123456789';
const user = (overrides: Partial<Principal> = {}): Principal => ({ ...anonymousPrincipal('acme'), kind: 'user', id: 'u-1', roles: ['viewer'], ...overrides });

/** An authenticator of HS256 tokens with a real verifier, and its token cache's hit and miss counts. */
async function tokenAuthenticator(): Promise<{ authenticator: Authenticator; counts: { hit: number; miss: number } }> {
  const config = loadConfig({ JWT_SECRET: SECRET, JWT_ALGORITHMS: 'HS256' });
  const keys = await loadKeySources(config);
  const counts = { hit: 0, miss: 0 };
  const verifier = new TokenVerifier(keys!, config, { hit: () => counts.hit++, miss: () => counts.miss++ });
  const signer = await ContextSigner.create(config);
  return { authenticator: new Authenticator(verifier, new ConfiguredApiKeys([]), config.claims, null, signer), counts };
}

describe('answers from memory come at once', () => {
  it('a cached bearer token: the same principal, without a promise', async () => {
    const { authenticator, counts } = await tokenAuthenticator();
    const authorization = await hs256Bearer(SECRET, 'u-1', { tenant_id: 'acme', roles: ['viewer'] });

    const first = authenticator.authenticate({ authorization });
    expect(first).toBeInstanceOf(Promise);
    const { principal } = await first;
    const again = authenticator.authenticate({ authorization });
    expect(again).not.toBeInstanceOf(Promise);
    expect(again).toEqual({ principal, via: 'jwt' });
    expect((again as { principal: Principal }).principal).toBe(principal);
    expect(counts).toEqual({ hit: 1, miss: 1 });
    // Refusals of what can be judged at once are thrown at once, never downgraded.
    expect(() => authenticator.authenticate({ authorization: 'Basic abc' })).toThrow(expect.objectContaining({ code: 'INVALID_TOKEN' }));
  });

  it('a token that ends like a cached one but differs before is verified, not taken for it', async () => {
    const { authenticator, counts } = await tokenAuthenticator();
    const authorization = await hs256Bearer(SECRET, 'u-1', { tenant_id: 'acme', roles: ['admin'] });
    await authenticator.authenticate({ authorization });

    // Another subject and tenant in the payload, the cached token's signature (its tail) kept.
    const [header, , signature] = authorization.slice('Bearer '.length).split('.');
    const payload = Buffer.from(JSON.stringify({ sub: 'intruder', tenant_id: 'other', roles: ['admin'], exp: Math.floor(Date.now() / 1000) + 600 })).toString('base64url');
    const forged = `Bearer ${header}.${payload}.${signature}`;
    await expect(authenticator.authenticate({ authorization: forged })).rejects.toMatchObject({ code: 'INVALID_TOKEN' });
    expect(counts).toEqual({ hit: 0, miss: 2 });
    // The genuine token is still answered from memory: the forgery displaced nothing.
    expect(authenticator.authenticate({ authorization })).toMatchObject({ principal: { id: 'u-1', tenantId: 'acme' } });
    // Also when sent with a lower-case scheme and trailing space (the parsed path, same cache entry).
    expect(authenticator.authenticate({ authorization: `bearer ${authorization.slice(7)}  ` })).toMatchObject({ principal: { id: 'u-1' } });
    expect(counts).toEqual({ hit: 2, miss: 2 });
  });

  it('the context token once signed, and tenant checks and rate limits kept in memory', async () => {
    const signer = await ContextSigner.create(loadConfig({}));
    const caller = user();
    const signing = signer.sign(caller);
    expect(signing).toBeInstanceOf(Promise);
    const token = await signing;
    expect(signer.sign(caller)).toBe(token);

    const flags = new MemoryTenantFlagStore();
    await flags.setReadOnly('acme', true);
    const decision = new TenantGuard(flags, 0).check(caller, undefined);
    expect(decision).toEqual({ principal: caller, readOnly: true, inGracePeriod: false });

    const limiter = new RateLimiter({ ...RATE_LIMIT_DEFAULTS, default: { requests: 2, windowSeconds: 60 } }, new MemoryRateLimitStore());
    const admitted = limiter.check(caller, '127.0.0.1', { kind: 'rest' });
    expect(admitted).toMatchObject({ allowed: true, policy: '"default";q=2;w=60, "authenticated";q=1000;w=3600' });
    expect(limiter.check(caller, '127.0.0.1', { kind: 'rest' })).toMatchObject({ allowed: true });
    expect(limiter.check(caller, '127.0.0.1', { kind: 'rest' })).toMatchObject({ allowed: false, retryAfterSeconds: 30 });
  });
});
