import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { LRUCache } from 'lru-cache';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, importPKCS8, jwtVerify, type JWK } from 'jose';
import type { GatewayConfig } from '../config/schema.js';
import type { MaybePromise } from '../pipeline/maybe-async.js';
import type { Principal } from './principal.js';
import { pemBlock } from './key-sources.js';
import {
  CONTEXT_TOKEN_AUDIENCE,
  CONTEXT_TOKEN_ISSUER,
  CONTEXT_TOKEN_REUSE_SECONDS,
  CONTEXT_TOKEN_TTL_SECONDS,
  type ContextTokenClaims,
} from './context-token.js';

type SigningKey = Awaited<ReturnType<typeof importPKCS8>>;

/** A context token and when to stop handing it out (CONTEXT_TOKEN_REUSE_SECONDS after signing). */
interface SignedContext {
  readonly token: Promise<string>;
  /** The token once signed: handed out without a promise from then on. */
  signed: string | null;
  reuseUntil: number;
}

/** Signs `x-gateway-context` tokens and publishes the matching public key as a JWKS. */
export class ContextSigner {
  private constructor(
    private readonly key: SigningKey,
    private readonly alg: 'EdDSA' | 'ES256',
    private readonly kid: string,
    readonly jwks: { keys: JWK[] },
    /** True when no key was configured and this one lives only as long as the process. */
    readonly ephemeral: boolean,
  ) {}

  /**
   * Signed context tokens by principal, reused until CONTEXT_TOKEN_REUSE_SECONDS after signing: the
   * rest of the token's lifetime is the margin for clock skew and slow calls downstream. Bounded, so
   * a flood of distinct callers costs re-signing, never memory.
   */
  private readonly tokens = new LRUCache<string, SignedContext>({ max: 10_000, ttl: CONTEXT_TOKEN_REUSE_SECONDS * 1000, ttlAutopurge: false });
  /**
   * The same tokens by principal object: a cached bearer token yields the same principal object on
   * every request (Authenticator), so most requests find their token here without building the
   * claims key above.
   */
  private readonly byPrincipal = new WeakMap<Principal, SignedContext>();

  static async create(config: GatewayConfig): Promise<ContextSigner> {
    const pem =
      config.gatewaySigningKey ?? (config.gatewaySigningKeyFile ? readFileSync(config.gatewaySigningKeyFile, 'utf8') : undefined);
    if (pem) {
      const privateKey = createPrivateKey(pemBlock(pem));
      const type = privateKey.asymmetricKeyType;
      const alg = type === 'ed25519' ? 'EdDSA' : type === 'ec' ? 'ES256' : null;
      if (!alg) throw new Error('GATEWAY_SIGNING_KEY must be an Ed25519 or EC P-256 private key (PKCS#8 PEM)');
      const key = await importPKCS8(pemBlock(pem), alg);
      const publicJwk = await exportJWK(createPublicKey(privateKey));
      return ContextSigner.withPublicKey(key, alg, publicJwk, false);
    }
    const pair = await generateKeyPair('EdDSA', { extractable: true });
    return ContextSigner.withPublicKey(pair.privateKey, 'EdDSA', await exportJWK(pair.publicKey), true);
  }

  private static async withPublicKey(key: SigningKey, alg: 'EdDSA' | 'ES256', publicJwk: JWK, ephemeral: boolean) {
    const kid = await calculateJwkThumbprint(publicJwk);
    return new ContextSigner(key, alg, kid, { keys: [{ ...publicJwk, kid, alg, use: 'sig' }] }, ephemeral);
  }

  /**
   * A 60-second ticket that lets a browser's EventSource (which cannot send headers) open an event
   * stream: `?ticket=` carries this, never a long-lived token. It names its purpose, so it is no
   * use anywhere else.
   */
  signTicket(principal: Principal): Promise<string> {
    return new SignJWT({ principal: { ...principal } })
      .setProtectedHeader({ alg: this.alg, kid: this.kid, typ: 'stream-ticket+jwt' })
      .setIssuer(CONTEXT_TOKEN_ISSUER)
      .setAudience('gateway-stream-ticket')
      .setIssuedAt()
      .setExpirationTime('60s')
      .sign(this.key);
  }

  async verifyTicket(ticket: string): Promise<Principal> {
    const key = await importJWK(this.jwks.keys[0]!, this.alg);
    const { payload } = await jwtVerify(ticket, key, {
      issuer: CONTEXT_TOKEN_ISSUER,
      audience: 'gateway-stream-ticket',
      algorithms: [this.alg],
      typ: 'stream-ticket+jwt',
    });
    return Object.freeze(payload.principal as Principal);
  }

  /**
   * The caller's `x-gateway-context` token. It says who is calling, nothing about the request (the
   * request id travels in `x-request-id`), so one signature serves every request of the same
   * principal until shortly before it expires: signing on every request was ~9% of the gateway's CPU
   * on REST passthrough. The promise is cached, so concurrent first requests share one signature;
   * once signed, the token itself is returned (no promise per request).
   */
  sign(principal: Principal): MaybePromise<string> {
    const now = Date.now();
    const held = this.byPrincipal.get(principal);
    if (held && held.reuseUntil > now) return held.signed ?? held.token;
    const subject = principal.id ?? 'anonymous';
    const tier = principal.subscription?.tier ?? principal.tier;
    // Every signed claim is in the key: two principals share a token only if it would be identical.
    const key = JSON.stringify([subject, principal.kind, principal.tenantId, principal.roles, principal.permissions, tier, principal.demo]);
    const cached = this.tokens.get(key);
    if (cached && cached.reuseUntil > now) {
      this.byPrincipal.set(principal, cached);
      return cached.signed ?? cached.token;
    }
    const claims: Omit<ContextTokenClaims, 'sub'> = {
      principal_kind: principal.kind,
      tenant_id: principal.tenantId,
      roles: [...principal.roles],
      permissions: [...principal.permissions],
      subscription_tier: tier,
      demo: principal.demo,
    };
    const token = new SignJWT(claims)
      .setProtectedHeader({ alg: this.alg, kid: this.kid, typ: 'JWT' })
      .setSubject(subject)
      .setIssuer(CONTEXT_TOKEN_ISSUER)
      .setAudience(CONTEXT_TOKEN_AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(`${CONTEXT_TOKEN_TTL_SECONDS}s`)
      .sign(this.key);
    const signed: SignedContext = { token, signed: null, reuseUntil: now + CONTEXT_TOKEN_REUSE_SECONDS * 1000 };
    this.tokens.set(key, signed);
    this.byPrincipal.set(principal, signed);
    token.then(
      (value) => void (signed.signed = value),
      // A failed signature is not remembered.
      () => {
        signed.reuseUntil = 0;
        this.tokens.delete(key);
      },
    );
    return token;
  }
}
