import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { ContextSigner } from '../../src/auth/context-signer.js';
import { anonymousPrincipal, type Principal } from '../../src/auth/principal.js';
import { loadConfig } from '../../src/config/load.js';

const user = (overrides: Partial<Principal> = {}): Principal => ({ ...anonymousPrincipal('acme'), kind: 'user', id: 'u-1', roles: ['viewer'], ...overrides });

describe('x-gateway-context signing', () => {
  it('signs once per caller and reuses the token, but never shares it between callers with different claims', async () => {
    const signer = await ContextSigner.create(loadConfig({}));
    const first = await signer.sign(user());
    expect(await signer.sign(user())).toBe(first);
    for (const other of [user({ id: 'u-2' }), user({ tenantId: 'globex' }), user({ roles: ['admin'] }), user({ permissions: ['read:orders'] })]) {
      const token = await signer.sign(other);
      expect(token).not.toBe(first);
      expect(decodeJwt(token)).toMatchObject({ sub: other.id, tenant_id: other.tenantId, roles: [...other.roles], permissions: [...other.permissions] });
    }
    expect(decodeJwt(first)).not.toHaveProperty('request_id');
  });
});
