import type { RedisClient } from '../stores/redis.js';
import type { BucketCheck } from './policy.js';
import { BucketLists, decide, type Decision, type RateLimitStore } from './store.js';

/**
 * Every bucket of one decision in one atomic round trip: refill from Redis's own clock (no skew
 * between gateway instances), admit only if all buckets hold a token, then take one from each.
 * Registered with ioredis `defineCommand`, so it is sent once and then called by its SHA.
 * Keys of one caller share a hash tag (`rl:{caller}:…`), so the script is Redis Cluster safe.
 */
const TOKEN_BUCKETS = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local levels = {}
local allowed = 1
for i = 1, #KEYS do
  local capacity = tonumber(ARGV[(i - 1) * 3 + 1])
  local perMs = tonumber(ARGV[(i - 1) * 3 + 2])
  local state = redis.call('HMGET', KEYS[i], 'tokens', 'at')
  local level = capacity
  if state[1] then
    level = math.min(capacity, tonumber(state[1]) + math.max(0, now - tonumber(state[2])) * perMs)
  end
  levels[i] = level
  if level < 1 then allowed = 0 end
end
if allowed == 1 then
  for i = 1, #KEYS do
    levels[i] = levels[i] - 1
    redis.call('HSET', KEYS[i], 'tokens', tostring(levels[i]), 'at', now)
    redis.call('PEXPIRE', KEYS[i], ARGV[(i - 1) * 3 + 3])
  end
end
local out = { allowed }
for i = 1, #KEYS do out[i + 1] = tostring(levels[i]) end
return out
`;

type WithTokenBuckets = RedisClient & { tokenBuckets(keyCount: number, ...args: (string | number)[]): Promise<[number, ...string[]]> };

export class RedisRateLimitStore implements RateLimitStore {
  private readonly redis: WithTokenBuckets;
  private readonly lists = new BucketLists();

  constructor(redis: RedisClient) {
    if (!('tokenBuckets' in redis)) redis.defineCommand('tokenBuckets', { lua: TOKEN_BUCKETS });
    this.redis = redis as WithTokenBuckets;
  }

  async consume(checks: readonly BucketCheck[]): Promise<Decision> {
    const list = this.lists.of(checks);
    const args: number[] = [];
    for (let i = 0; i < checks.length; i++) args.push(list.capacity[i]!, list.perMs[i]!, list.keep[i]!.ttl);
    const [allowed, ...levels] = await this.redis.tokenBuckets(checks.length, ...checks.map((c) => c.key), ...args);
    return decide(allowed === 1, list, levels.map(Number));
  }
}
