import { errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { LRUCache } from 'lru-cache';
import type { GatewayConfig } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import type { MaybePromise } from '../pipeline/maybe-async.js';
import type { KeySources } from './key-sources.js';

/** Tokens beyond this are refused unread: no IdP issues them, and parsing them costs us. */
const MAX_TOKEN_LENGTH = 8_192;
/** Average token bytes the verified-token cache budgets per entry (TOKEN_CACHE_SIZE entries). */
const TOKEN_BYTES_BUDGET = 2_048;
/** The cache key: a token's tail, inside its signature (the shortest, HS256's, is 43 characters). */
const KEY_CHARACTERS = 43;

interface VerifiedToken {
  readonly token: string;
  readonly payload: JWTPayload;
}

export interface TokenCacheCounters {
  hit(): void;
  miss(): void;
}

/**
 * Verifies bearer tokens with jose against the configured keys and allow-list, and remembers
 * verified tokens (never beyond their `exp`) so a client reusing its token does not pay for a
 * signature check on every request. Only verified tokens are ever stored, and the memory the cache
 * holds is bounded by the summed token lengths.
 *
 * The cache is keyed by the token's last KEY_CHARACTERS characters (signature material: at least 258
 * bits for every JWS algorithm) and a hit needs the whole token to be equal. Each request's token is
 * a new string, and a Map lookup hashes its key character by character: ~1.5 µs for a 1 KB token,
 * against ~50 ns for the tail plus an equality check (a SHA-256 of the token cost more still). A token
 * sharing a cached token's tail but not the rest is simply a miss and is verified: it cannot be
 * taken for the other, and, unsigned, it is never stored to displace it.
 */
export class TokenVerifier {
  private readonly cache: LRUCache<string, VerifiedToken> | null;

  constructor(
    private readonly keys: KeySources,
    private readonly config: GatewayConfig,
    private readonly counters: TokenCacheCounters,
  ) {
    this.cache =
      config.tokenCacheSize > 0
        ? new LRUCache({
            max: config.tokenCacheSize,
            // Typical tokens are ~1 KB; a cache full of 8 KB tokens holds fewer of them, not more memory.
            maxSize: config.tokenCacheSize * TOKEN_BYTES_BUDGET,
            sizeCalculation: (entry) => entry.token.length,
            ttlAutopurge: false,
          })
        : null;
  }

  /** The verified payload: at once for a cached token, else after the signature check. Throws or rejects with a GatewayError. */
  verify(token: string): MaybePromise<JWTPayload> {
    if (token.length > MAX_TOKEN_LENGTH) throw new GatewayError('INVALID_TOKEN', 'The token is too large');
    const cached = this.cached(token);
    if (cached) return cached;
    this.counters.miss();
    return this.verifySignature(token);
  }

  /**
   * The payload of `candidate` if it is a verified token in the cache (counted as a hit), else
   * undefined (not counted: the caller goes on to `verify`). Only tokens that passed every check are
   * in the cache, so a caller may look up an unparsed candidate first.
   */
  cached(candidate: string): JWTPayload | undefined {
    if (!this.cache || candidate.length < KEY_CHARACTERS) return undefined;
    const entry = this.cache.get(candidate.slice(-KEY_CHARACTERS));
    if (entry === undefined || entry.token !== candidate) return undefined;
    this.counters.hit();
    return entry.payload;
  }

  private async verifySignature(token: string): Promise<JWTPayload> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.keys.resolveKey, {
        algorithms: this.keys.algorithms,
        issuer: this.config.jwtIssuer,
        audience: this.config.jwtAudience,
        clockTolerance: this.config.jwtClockToleranceSeconds,
        requiredClaims: this.config.jwtRequiredClaims,
      }));
    } catch (error) {
      throw tokenError(error);
    }
    if (typeof payload.iat === 'number' && payload.iat > Date.now() / 1000 + this.config.jwtClockToleranceSeconds) {
      throw new GatewayError('INVALID_TOKEN', 'The token was issued in the future');
    }

    if (this.cache && typeof payload.exp === 'number') {
      const ttl = payload.exp * 1000 - Date.now();
      if (ttl > 0 && token.length >= KEY_CHARACTERS) this.cache.set(token.slice(-KEY_CHARACTERS), { token, payload }, { ttl });
    }
    return payload;
  }
}

/** jose's failure, as a client-safe reason: enough to fix a client, nothing about our keys. */
function tokenError(error: unknown): GatewayError {
  if (error instanceof joseErrors.JWTExpired) return new GatewayError('TOKEN_EXPIRED');
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    const claim = error.claim;
    if (claim === 'nbf') return new GatewayError('INVALID_TOKEN', 'The token is not valid yet');
    if (claim === 'iss') return new GatewayError('INVALID_TOKEN', 'The token has an unexpected issuer');
    if (claim === 'aud') return new GatewayError('INVALID_TOKEN', 'The token has an unexpected audience');
    return new GatewayError('INVALID_TOKEN', `The token's "${claim}" claim is missing or invalid`);
  }
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return new GatewayError('INVALID_TOKEN', 'The token algorithm is not allowed');
  if (error instanceof joseErrors.JWKSNoMatchingKey) return new GatewayError('INVALID_TOKEN', 'The token was signed by an unknown key');
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return new GatewayError('INVALID_TOKEN', 'The token signature is invalid');
  if (error instanceof joseErrors.JWSInvalid || error instanceof joseErrors.JWTInvalid) {
    return new GatewayError('INVALID_TOKEN', 'The token is malformed');
  }
  // Key set unreachable, key of the wrong type, …: still the token that cannot be trusted, never a 500.
  return new GatewayError('INVALID_TOKEN', 'The token could not be verified');
}
