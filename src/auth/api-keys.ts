import { createHash } from 'node:crypto';
import type { ApiKeyRecord } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import type { LastKnown } from '../stores/last-known.js';
import { RedisAvailability, RedisUnavailable } from '../stores/redis-availability.js';
import type { RedisClient } from '../stores/redis.js';

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
 * (comma-separated) and tier. Redis is asked on every request, so deleting the hash revokes the key
 * on the next one. While Redis is unreachable, a key verified within REDIS_LAST_KNOWN_SECONDS keeps
 * working; any other key gets 503 AUTH_UNAVAILABLE — never 401, which would tell a client holding
 * a good key to throw it away.
 */
export class RedisApiKeys implements ApiKeyStore {
  private readonly lastKnown: LastKnown<ApiKeyRecord>;

  constructor(
    private readonly redis: RedisClient,
    private readonly availability = RedisAvailability.of(redis),
  ) {
    this.lastKnown = availability.lastKnown(10_000);
    availability.declare('apiKeys', 'last-known');
  }

  async find(sha256: string): Promise<ApiKeyRecord | null> {
    let fields: Record<string, string>;
    try {
      fields = await this.availability.run(() => this.redis.hgetall(`apikey:${sha256}`));
    } catch (error) {
      if (!(error instanceof RedisUnavailable)) throw error;
      this.availability.fellBack('apiKeys');
      const known = this.lastKnown.recall(sha256);
      if (known) return known;
      throw new GatewayError('AUTH_UNAVAILABLE', 'API keys cannot be checked right now; try again shortly');
    }
    const record = toRecord(sha256, fields);
    if (record) this.lastKnown.remember(sha256, record);
    else this.lastKnown.forget(sha256);
    return record;
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

function toRecord(sha256: string, fields: Record<string, string>): ApiKeyRecord | null {
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
