import { createHash } from 'node:crypto';
import type { RedisClient } from '../stores/redis.js';
import type { ApiKeyRecord } from '../config/schema.js';

/** API keys are looked up by their SHA-256: the gateway never stores or logs a key itself. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export interface ApiKeyStore {
  find(sha256: string): Promise<ApiKeyRecord | null>;
}

/** Keys from the configuration file: fixed until the next deploy. */
export class ConfiguredApiKeys implements ApiKeyStore {
  private readonly byHash: Map<string, ApiKeyRecord>;

  constructor(records: readonly ApiKeyRecord[]) {
    this.byHash = new Map(records.map((record) => [record.sha256, record]));
  }

  async find(sha256: string): Promise<ApiKeyRecord | null> {
    return this.byHash.get(sha256) ?? null;
  }
}

/**
 * Keys in Redis as hashes `apikey:<sha256>` with fields clientId, tenantId, roles, permissions
 * (comma-separated) and tier. Deleting the hash revokes the key on the next request: no cache.
 */
export class RedisApiKeys implements ApiKeyStore {
  constructor(private readonly redis: RedisClient) {}

  async find(sha256: string): Promise<ApiKeyRecord | null> {
    const fields = await this.redis.hgetall(`apikey:${sha256}`);
    if (!fields.clientId || !fields.tenantId) return null;
    const list = (value: string | undefined) => (value ? value.split(',').map((s) => s.trim()).filter(Boolean) : []);
    return {
      sha256,
      clientId: fields.clientId,
      tenantId: fields.tenantId,
      roles: list(fields.roles),
      permissions: list(fields.permissions),
      tier: fields.tier || 'standard',
    };
  }

  async add(key: string, record: Omit<ApiKeyRecord, 'sha256'>): Promise<string> {
    const sha256 = hashApiKey(key);
    await this.redis.hset(`apikey:${sha256}`, {
      clientId: record.clientId,
      tenantId: record.tenantId,
      roles: record.roles.join(','),
      permissions: record.permissions.join(','),
      tier: record.tier,
    });
    return sha256;
  }

  async revoke(key: string): Promise<void> {
    await this.redis.del(`apikey:${hashApiKey(key)}`);
  }
}

/** Configured keys first, then the shared store. */
export class ApiKeyChain implements ApiKeyStore {
  constructor(private readonly stores: readonly ApiKeyStore[]) {}

  async find(sha256: string): Promise<ApiKeyRecord | null> {
    for (const store of this.stores) {
      const record = await store.find(sha256);
      if (record) return record;
    }
    return null;
  }
}
