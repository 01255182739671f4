import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { RedisClient } from '../stores/redis.js';
import { z } from 'zod';

/**
 * Automatic Persisted Queries share one cache across instances when Redis is configured: Apollo
 * Server only needs a KeyValueCache (get/set/delete, checked structurally), and these three calls are all it takes (a dependency on Keyv
 * and its Redis adapter would add a second Redis client for nothing).
 */
export class RedisKeyValueCache {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix = 'apq:',
  ) {}

  async get(key: string): Promise<string | undefined> {
    return (await this.redis.get(this.prefix + key)) ?? undefined;
  }

  async set(key: string, value: string, options?: { ttl?: number | null }): Promise<void> {
    if (options?.ttl) await this.redis.set(this.prefix + key, value, 'EX', Math.ceil(options.ttl));
    else await this.redis.set(this.prefix + key, value);
  }

  async delete(key: string): Promise<boolean> {
    return (await this.redis.del(this.prefix + key)) > 0;
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
 */
export class TrustedDocuments {
  private readonly manifest = new Map<string, string>();

  constructor(
    manifestPath: string | undefined,
    private readonly redis: RedisClient | null,
  ) {
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
    return this.redis ? await this.redis.get(`trusted-document:${hash}`) : null;
  }
}
