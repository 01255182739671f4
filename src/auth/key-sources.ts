import { readFileSync } from 'node:fs';
import { createRemoteJWKSet, importJWK, importSPKI, type JWK, type JWTHeaderParameters, type JWTVerifyGetKey } from 'jose';
import type { GatewayConfig } from '../config/schema.js';

type Key = Awaited<ReturnType<typeof importSPKI>> | Uint8Array;

export interface KeySources {
  /** The algorithms a token may use: exactly the configured allow-list. */
  readonly algorithms: string[];
  readonly resolveKey: JWTVerifyGetKey;
  readonly describe: string[];
}

const isHmac = (alg: string) => alg.startsWith('HS');

export class NoKeyError extends Error {
  override name = 'NoKeyError';
}

/**
 * Picks the verification key for a token by its header. HMAC algorithms only ever get the shared
 * secret and asymmetric ones only public keys, so an HS256 token "signed" with a public key
 * (algorithm confusion) can never verify. JWKS fetching, caching, the refetch on an unknown `kid`
 * and its cooldown are jose's `createRemoteJWKSet`.
 */
export async function loadKeySources(config: GatewayConfig): Promise<KeySources | null> {
  const algorithms = [...config.jwtAlgorithms];
  const describe: string[] = [];
  const secret = config.jwtSecret ? new TextEncoder().encode(config.jwtSecret) : null;
  if (secret) describe.push('shared secret');

  const staticKeys = new Map<string, Key>();
  const publicKeyText =
    config.jwtPublicKey ?? (config.jwtPublicKeyFile ? readFileSync(config.jwtPublicKeyFile, 'utf8') : undefined);
  if (publicKeyText) {
    for (const alg of algorithms.filter((a) => !isHmac(a))) {
      const key = await importPublicKey(publicKeyText, alg);
      if (key) staticKeys.set(alg, key);
    }
    if (staticKeys.size === 0) throw new Error('JWT_PUBLIC_KEY does not fit any algorithm in JWT_ALGORITHMS');
    describe.push(`static public key (${[...staticKeys.keys()].join(', ')})`);
  }

  const jwks = config.jwtJwksUrl
    ? createRemoteJWKSet(new URL(config.jwtJwksUrl), {
        timeoutDuration: 5_000,
        cooldownDuration: config.jwtJwksCooldownSeconds * 1000,
        cacheMaxAge: 10 * 60_000,
      })
    : null;
  if (jwks) describe.push(`JWKS ${config.jwtJwksUrl}`);

  if (!secret && staticKeys.size === 0 && !jwks) return null;

  const resolveKey: JWTVerifyGetKey = async (header: JWTHeaderParameters, token) => {
    const alg = header.alg;
    if (isHmac(alg)) {
      if (!secret) throw new NoKeyError(`no secret for ${alg}`);
      return secret;
    }
    // A token naming a `kid` is matched against the IdP's key set first.
    if (jwks && (header.kid !== undefined || staticKeys.size === 0)) return jwks(header, token);
    const key = staticKeys.get(alg);
    if (key) return key;
    if (jwks) return jwks(header, token);
    throw new NoKeyError(`no key for ${alg}`);
  };
  return { algorithms, resolveKey, describe };
}

async function importPublicKey(text: string, alg: string): Promise<Key | null> {
  try {
    if (text.trim().startsWith('{')) return (await importJWK(JSON.parse(text) as JWK, alg)) as Key;
    return await importSPKI(pemBlock(text), alg);
  } catch {
    return null; // this key type does not fit this algorithm (e.g. an EC key for RS256)
  }
}

/** Keeps only the PEM block, so key files may carry a comment line before it. */
export function pemBlock(text: string): string {
  const match = /-----BEGIN [^-]+-----[\s\S]+?-----END [^-]+-----/.exec(text);
  return match ? match[0] : text;
}
