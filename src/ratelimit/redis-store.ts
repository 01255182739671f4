import { generateMulti } from 'cluster-key-slot';
import { Cluster, ReplyError } from 'ioredis';
import { RedisAvailability, RedisUnavailable } from '../stores/redis-availability.js';
import { TOKEN_BUCKETS_COMMAND, type RedisClient } from '../stores/redis.js';
import type { BucketCheck } from './policy.js';
import { BucketLists, decide, type BucketList, type Decision, type RateLimitStore } from './store.js';

/**
 * Every decision of one batch in one atomic script call, each evaluated in order exactly as alone:
 * refill from Redis's own clock (no skew between gateway instances), admit only if all of its
 * buckets hold a token, then take one from each. KEYS are the decisions' keys in order; ARGV[1] is
 * a JSON array with, per decision, `[key count, then capacity, tokens per ms and TTL per key]` (one
 * argument per batch rather than nine per decision: ioredis's cost per argument was most of a
 * batched decision's).
 * The reply is, per decision, `allowed` and each bucket's level, or -1 and the error of a decision
 * Redis refused (a key of the wrong type): it fails alone, having taken nothing, as it did alone.
 * Registered with ioredis `defineCommand`, so it is sent once and then called by its SHA.
 */
const TOKEN_BUCKETS = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local decisions = cjson.decode(ARGV[1])
local out, o, k = {}, 0, 0
for d = 1, #decisions do
  local spec = decisions[d]
  local n = spec[1]
  local levels = {}
  local allowed = 1
  local failed = nil
  for i = 1, n do
    local capacity = spec[i * 3 - 1]
    local perMs = spec[i * 3]
    local state = redis.pcall('HMGET', KEYS[k + i], 'tokens', 'at')
    if state.err then
      failed = state.err
      break
    end
    local level = capacity
    if state[1] then
      level = math.min(capacity, tonumber(state[1]) + math.max(0, now - tonumber(state[2])) * perMs)
    end
    levels[i] = level
    if level < 1 then allowed = 0 end
  end
  if failed then
    out[o + 1] = -1
    out[o + 2] = failed
    o = o + 2
  else
    if allowed == 1 then
      for i = 1, n do
        levels[i] = levels[i] - 1
        redis.call('HSET', KEYS[k + i], 'tokens', tostring(levels[i]), 'at', now)
        redis.call('PEXPIRE', KEYS[k + i], spec[i * 3 + 1])
      end
    end
    out[o + 1] = allowed
    for i = 1, n do out[o + 1 + i] = tostring(levels[i]) end
    o = o + 1 + n
  end
  k = k + n
end
return out
`;

type WithTokenBuckets = RedisClient & {
  tokenBuckets(keyCount: number, keys: readonly string[], decisions: string): Promise<(number | string)[]>;
};

/** A bucket list as the script takes it: its JSON array for ARGV[1], and its hash slot (0 unless a Cluster; -1 across slots). */
interface ScriptedList {
  readonly spec: string;
  readonly slot: number;
}

/** A batch bigger than this is sent at once, so one script never holds Redis for long. */
export const MAX_BATCH = 256;

/** The decisions asked during one event-loop turn (of one hash slot, on a Cluster). */
class Batch {
  readonly keys: string[] = [];
  /** Each decision's part of ARGV[1] (its bucket list's JSON array). */
  readonly specs: string[] = [];
  readonly lists: BucketList[] = [];
  readonly resolves: ((decision: Decision) => void)[] = [];
  readonly rejects: ((error: Error) => void)[] = [];
}

/**
 * Token buckets in Redis, decided in batches: every decision asked during one event-loop turn goes
 * to Redis as one script call, one bounded wait (RedisAvailability.run) and one reply, instead of
 * one of each per request. The batch is sent from `setImmediate`, which runs right after the poll
 * phase that parsed the requests: the command is written when ioredis's auto-pipelining would have
 * written it (that too waits for `setImmediate`; createRedis exempts this command from it, so it is
 * not deferred twice), so no request waits longer, and a busy poll phase shares one call. (A
 * microtask flush would gather only the decisions of one request's callback: mostly batches of
 * one, and more CPU per request in the REST benchmark.) A batch that fails fails each of its decisions as that decision's own call
 * would have failed (RedisUnavailable), so each falls back per the store-failure policy.
 *
 * Keys of one caller share a hash tag (`rl:{caller}:…`); on a Redis Cluster a batch is split by
 * hash slot, one call per slot, so every script's keys live on one node.
 */
export class RedisRateLimitStore implements RateLimitStore {
  private readonly redis: WithTokenBuckets;
  private readonly availability: RedisAvailability;
  private readonly lists = new BucketLists();
  private readonly cluster: boolean;
  /** Open batches by hash slot (slot 0 when not a Cluster). */
  private readonly open = new Map<number, Batch>();
  private scheduled = false;
  /** What a bucket list needs here, worked out once per list (lists are kept per caller). */
  private readonly scripted = new WeakMap<BucketList, ScriptedList>();

  constructor(redis: RedisClient, availability: RedisAvailability = RedisAvailability.of(redis)) {
    if (!(TOKEN_BUCKETS_COMMAND in redis)) redis.defineCommand(TOKEN_BUCKETS_COMMAND, { lua: TOKEN_BUCKETS });
    this.redis = redis as WithTokenBuckets;
    this.availability = availability;
    this.cluster = redis instanceof Cluster;
  }

  consume(checks: readonly BucketCheck[]): Promise<Decision> {
    const list = this.lists.of(checks);
    const { slot } = this.scriptedOf(list);
    // Keys across slots (a Cluster only): the call fails with CROSSSLOT, as it did alone; it must not fail others.
    if (slot < 0) {
      const alone = new Batch();
      const decision = this.add(alone, list);
      this.send(alone);
      return decision;
    }
    let batch = this.open.get(slot);
    if (!batch) {
      batch = new Batch();
      this.open.set(slot, batch);
    }
    const decision = this.add(batch, list);
    if (batch.lists.length >= MAX_BATCH) {
      this.open.delete(slot);
      this.send(batch);
    } else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
    return decision;
  }

  private add(batch: Batch, list: BucketList): Promise<Decision> {
    for (const check of list.checks) batch.keys.push(check.key);
    batch.specs.push(this.scriptedOf(list).spec);
    batch.lists.push(list);
    return new Promise<Decision>((resolve, reject) => {
      batch.resolves.push(resolve);
      batch.rejects.push(reject);
    });
  }

  private scriptedOf(list: BucketList): ScriptedList {
    let scripted = this.scripted.get(list);
    if (!scripted) {
      const numbers = [list.checks.length];
      for (let i = 0; i < list.checks.length; i++) {
        // PEXPIRE: after a window an untouched bucket is full again, as good as absent.
        numbers.push(list.capacity[i]!, list.perMs[i]!, Math.ceil(list.checks[i]!.policy.windowSeconds * 1000));
      }
      const slot = this.cluster ? generateMulti(list.checks.map((check) => check.key)) : 0;
      scripted = { spec: JSON.stringify(numbers), slot };
      this.scripted.set(list, scripted);
    }
    return scripted;
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    for (const batch of this.open.values()) this.send(batch);
    this.open.clear();
  };

  /** One call for the batch; each decision settles from its part of the reply, or fails with the call. */
  private send(batch: Batch): void {
    const decisions = `[${batch.specs.join(',')}]`;
    this.availability.run(() => this.redis.tokenBuckets(batch.keys.length, batch.keys, decisions)).then(
      (reply) => settle(batch, reply),
      (error: unknown) => {
        for (const reject of batch.rejects) reject(error as Error);
      },
    );
  }
}

function settle(batch: Batch, reply: readonly (number | string)[]): void {
  let at = 0;
  for (let d = 0; d < batch.lists.length; d++) {
    const list = batch.lists[d]!;
    if (reply[at] === -1) {
      // Redis answered but refused this decision: a reply error, reported as RedisAvailability.run does.
      const message = String(reply[at + 1]);
      batch.rejects[d]!(new RedisUnavailable(message, { cause: new ReplyError(message) }));
      at += 2;
      continue;
    }
    const n = list.checks.length;
    const levels = new Array<number>(n);
    for (let i = 0; i < n; i++) levels[i] = Number(reply[at + 1 + i]);
    batch.resolves[d]!(decide(reply[at] === 1, list, levels));
    at += 1 + n;
  }
}
