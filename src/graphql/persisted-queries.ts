import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { GatewayError } from '../errors.js';
import type { LastKnown } from '../stores/last-known.js';
import { RedisAvailability, RedisUnavailable } from '../stores/redis-availability.js';
import type { RedisClient } from '../stores/redis.js';

/**
 * Automatic Persisted Queries share one cache across instances when Redis is configured: Apollo
 * Server only needs a KeyValueCache (get/set/delete, checked structurally), and these three calls are all it takes (a dependency on Keyv
 * and its Redis adapter would add a second Redis client for nothing).
 * APQ is an optimisation, never a gate: while Redis is unreachable every lookup is a miss (Apollo
 * answers PERSISTED_QUERY_NOT_FOUND, the client resends the text, which runs) and registrations
 * are dropped.
 */
export class RedisKeyValueCache {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix = 'apq:',
    private readonly availability = RedisAvailability.of(redis),
  ) {
    availability.declare('persistedQueries', 'miss');
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.unlessUnavailable(() => this.redis.get(this.prefix + key), null)) ?? undefined;
  }

  async set(key: string, value: string, options?: { ttl?: number | null }): Promise<void> {
    await this.unlessUnavailable(
      () => (options?.ttl ? this.redis.set(this.prefix + key, value, 'EX', Math.ceil(options.ttl)) : this.redis.set(this.prefix + key, value)),
      null,
    );
  }

  async delete(key: string): Promise<boolean> {
    return (await this.unlessUnavailable(() => this.redis.del(this.prefix + key), 0)) > 0;
  }

  private async unlessUnavailable<T, F>(command: () => Promise<T>, fallback: F): Promise<T | F> {
    try {
      return await this.availability.run(command);
    } catch (error) {
      if (!(error instanceof RedisUnavailable)) throw error;
      this.availability.fellBack('persistedQueries');
      return fallback;
    }
  }
}

/** The Apollo persisted query manifest format (as `generate-persisted-query-manifest` writes it). */
const manifestSchema = z.object({
  format: z.literal('apollo-persisted-query-manifest'),
  version: z.literal(1),
  operations: z.array(z.object({ id: z.string().regex(/^[0-9a-f]{64}$/), body: z.string() })),
});

export const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * Trusted documents: in allow-list mode only operations whose SHA-256 is in the manifest (file)
 * or in Redis (`trusted-document:<sha256>` → body) run. Clients may send the full text or only
 * `extensions.persistedQuery.sha256Hash`; the gateway fills in the text it trusts.
 * While Redis is unreachable the manifest still applies, documents read from Redis within
 * REDIS_LAST_KNOWN_SECONDS still run, and anything else gets 503 TRUSTED_DOCUMENTS_UNAVAILABLE:
 * it cannot be checked, and 400 OPERATION_NOT_TRUSTED would wrongly tell the client it never will be.
 */
export class TrustedDocuments {
  private readonly manifest = new Map<string, string>();
  private readonly shared: { redis: RedisClient; availability: RedisAvailability; lastKnown: LastKnown<string> } | null;

  constructor(manifestPath: string | undefined, redis: RedisClient | null, availability = redis ? RedisAvailability.of(redis) : null) {
    // Documents are up to operationLimits.maxCharacters (20 kB by default): 1,000 of them at most.
    this.shared = redis && availability ? { redis, availability, lastKnown: availability.lastKnown(1_000) } : null;
    this.shared?.availability.declare('trustedDocuments', 'last-known');
    if (!manifestPath) return;
    const manifest = manifestSchema.parse(JSON.parse(readFileSync(manifestPath, 'utf8')));
    for (const operation of manifest.operations) {
      if (sha256(operation.body) !== operation.id) throw new Error(`trusted documents manifest: id ${operation.id} does not match its body`);
      this.manifest.set(operation.id, operation.body);
    }
  }

  /** The trusted text for this hash, or null. */
  async lookup(hash: string): Promise<string | null> {
    const known = this.manifest.get(hash);
    if (known !== undefined) return known;
    if (!this.shared) return null;
    const { redis, availability, lastKnown } = this.shared;
    let body: string | null;
    try {
      body = await availability.run(() => redis.get(`trusted-document:${hash}`));
    } catch (error) {
      if (!(error instanceof RedisUnavailable)) throw error;
      availability.fellBack('trustedDocuments');
      const remembered = lastKnown.recall(hash);
      if (remembered !== undefined) return remembered;
      throw new GatewayError('TRUSTED_DOCUMENTS_UNAVAILABLE');
    }
    if (body === null) lastKnown.forget(hash);
    else lastKnown.remember(hash, body);
    return body;
  }
}
