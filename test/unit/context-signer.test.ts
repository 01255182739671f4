import { decodeJwt } from 'jose';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ContextSigner } from '../../src/auth/context-signer.js';
import { CONTEXT_TOKEN_REUSE_SECONDS, CONTEXT_TOKEN_TTL_SECONDS } from '../../src/auth/context-token.js';
import { anonymousPrincipal, type Principal } from '../../src/auth/principal.js';
import { loadConfig } from '../../src/config/load.js';

const user = (overrides: Partial<Principal> = {}): Principal => ({ ...anonymousPrincipal('acme'), kind: 'user', id: 'u-1', roles: ['viewer'], ...overrides });

describe('x-gateway-context signing', () => {
  it('signs once per caller and reuses the token, but never shares it between callers with different claims', async () => {
    const signer = await ContextSigner.create(loadConfig({}));
    const first = await signer.sign(user());
    expect(await signer.sign(user())).toBe(first);
    for (const other of [user({ id: 'u-2' }), user({ tenantId: 'globex' }), user({ roles: ['admin'] }), user({ permissions: ['read:orders'] }), user({ tier: 'gold' }), user({ demo: true })]) {
      const token = await signer.sign(other);
      expect(token).not.toBe(first);
      expect(decodeJwt(token)).toMatchObject({ sub: other.id, tenant_id: other.tenantId, roles: [...other.roles], permissions: [...other.permissions] });
    }
    expect(decodeJwt(first)).not.toHaveProperty('request_id');
  });

  afterEach(() => vi.useRealTimers());

  it('signs again once the reuse time has passed, so no token handed out is close to its expiry', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const signer = await ContextSigner.create(loadConfig({}));
    const caller = user();
    const first = await signer.sign(caller);
    vi.setSystemTime(Date.now() + (CONTEXT_TOKEN_REUSE_SECONDS - 1) * 1000);
    expect(await signer.sign(caller)).toBe(first);
    vi.setSystemTime(Date.now() + 2_000);
    const second = await signer.sign(caller);
    expect(second).not.toBe(first);
    // Handed out with at least the margin left for clock skew and slow calls downstream.
    expect(decodeJwt(second).exp! * 1000 - Date.now()).toBeGreaterThanOrEqual((CONTEXT_TOKEN_TTL_SECONDS - CONTEXT_TOKEN_REUSE_SECONDS) * 1000);
    // Another principal object with the same claims gets the fresh token too, not the stale one.
    expect(await signer.sign(user())).toBe(second);
  });
});
