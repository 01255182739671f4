import { describe, expect, it } from 'vitest';
import { anonymousPrincipal, isTokenFresh, type Principal } from '../../src/auth/principal.js';

const user = (issuedAt: number | null): Principal => ({ ...anonymousPrincipal('acme'), kind: 'user', id: 'u1', issuedAt });
const apiClient: Principal = { ...anonymousPrincipal('acme'), kind: 'api-client', id: 'billing-sync' };

describe('isTokenFresh', () => {
  it('without a freshness rule every caller is fresh', () => {
    expect(isTokenFresh(user(null), null)).toBe(true);
    expect(isTokenFresh(user(1), null)).toBe(true);
  });

  it('a user token is fresh when issued at or after the change, stale before it', () => {
    expect(isTokenFresh(user(1000), 1000)).toBe(true);
    expect(isTokenFresh(user(1001), 1000)).toBe(true);
    expect(isTokenFresh(user(999), 1000)).toBe(false);
  });

  it('a user token without iat is stale under a rule, unless the deployment opts out', () => {
    expect(isTokenFresh(user(null), 1000)).toBe(false);
    expect(isTokenFresh(user(null), 1000, true)).toBe(true);
    // The opt-out is about a missing iat only: an old one stays stale.
    expect(isTokenFresh(user(999), 1000, true)).toBe(false);
  });

  it('API keys and anonymous callers hold no IdP token: the rule does not apply', () => {
    expect(isTokenFresh(apiClient, 1000)).toBe(true);
    expect(isTokenFresh(anonymousPrincipal('acme'), 1000)).toBe(true);
  });
});
