import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, importPKCS8, jwtVerify, type JWK } from 'jose';
import type { GatewayConfig } from '../config/schema.js';
import type { Principal } from './principal.js';
import { pemBlock } from './key-sources.js';
import {
  CONTEXT_TOKEN_AUDIENCE,
  CONTEXT_TOKEN_ISSUER,
  CONTEXT_TOKEN_TTL_SECONDS,
  type ContextTokenClaims,
} from './context-token.js';

type SigningKey = Awaited<ReturnType<typeof importPKCS8>>;

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

  sign(principal: Principal, requestId: string): Promise<string> {
    const claims: Omit<ContextTokenClaims, 'sub'> = {
      principal_kind: principal.kind,
      tenant_id: principal.tenantId,
      roles: [...principal.roles],
      permissions: [...principal.permissions],
      subscription_tier: principal.subscription?.tier ?? principal.tier,
      demo: principal.demo,
      request_id: requestId,
    };
    return new SignJWT(claims)
      .setProtectedHeader({ alg: this.alg, kid: this.kid, typ: 'JWT' })
      .setSubject(principal.id ?? 'anonymous')
      .setIssuer(CONTEXT_TOKEN_ISSUER)
      .setAudience(CONTEXT_TOKEN_AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(`${CONTEXT_TOKEN_TTL_SECONDS}s`)
      .sign(this.key);
  }
}
