import { SignJWT, exportJWK, exportSPKI, generateKeyPair, type JWK, type JWTPayload } from 'jose';

export const TEST_ISSUER = 'https://idp.test';
export const TEST_AUDIENCE = 'gateway-tests';

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;

/** A real identity provider's signing side: key pairs, rotation, a JWKS document, token minting. */
export class TestIssuer {
  private keys: { kid: string; pair: KeyPair }[] = [];
  private counter = 0;

  static async create(alg: 'ES256' | 'RS256' = 'ES256'): Promise<TestIssuer> {
    const issuer = new TestIssuer(alg);
    await issuer.rotate();
    return issuer;
  }

  private constructor(readonly alg: 'ES256' | 'RS256') {}

  /** Adds a new current key (with a new kid); older keys stay published unless `dropOld`. */
  async rotate({ dropOld = false } = {}): Promise<string> {
    const kid = `key-${++this.counter}`;
    const pair = await generateKeyPair(this.alg, { extractable: true });
    this.keys = dropOld ? [{ kid, pair }] : [...this.keys, { kid, pair }];
    return kid;
  }

  get current() {
    return this.keys.at(-1)!;
  }

  async publicKeyPem(): Promise<string> {
    return exportSPKI(this.current.pair.publicKey);
  }

  async jwks(): Promise<{ keys: JWK[] }> {
    return {
      keys: await Promise.all(
        this.keys.map(async ({ kid, pair }) => ({ ...(await exportJWK(pair.publicKey)), kid, alg: this.alg, use: 'sig' })),
      ),
    };
  }

  /**
   * Signs `claims` (defaults: a user of tenant acme, valid for an hour) with the current key.
   * `kid` overrides the key id written in the header (to present ids the IdP never published).
   */
  async mint(
    claims: JWTPayload & Record<string, unknown> = {},
    { kid, withKid = true }: { kid?: string; withKid?: boolean } = {},
  ): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const key = this.current;
    kid ??= key.kid;
    return new SignJWT({
      sub: 'u-acme-1',
      iss: TEST_ISSUER,
      aud: TEST_AUDIENCE,
      iat: now,
      exp: now + 3600,
      tenant_id: 'acme',
      roles: [],
      permissions: [],
      ...claims,
    })
      .setProtectedHeader({ alg: this.alg, typ: 'JWT', ...(withKid ? { kid } : {}) })
      .sign(key.pair.privateKey);
  }
}
