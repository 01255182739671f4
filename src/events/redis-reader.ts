import type { FastifyBaseLogger } from 'fastify';
import calculateSlot from 'cluster-key-slot';
import { Cluster, ReplyError, type Redis } from 'ioredis';
import type { RedisAvailability } from '../stores/redis-availability.js';
import type { RedisClient } from '../stores/redis.js';
import { ListenerRegistry, type EventListener, type StreamEvent } from './bus.js';
import { compareIds } from './event-id.js';
import { FailureLog } from './failure-log.js';

export type Entry = [id: string, fields: string[]];
type ReadResult = [key: string, entries: Entry[]][];

export function toEvent([id, fields]: Entry): StreamEvent {
  const value = (name: string) => {
    const at = fields.indexOf(name);
    return at === -1 || at % 2 === 1 ? undefined : fields[at + 1];
  };
  return { id, type: value('type') ?? 'message', data: value('data') ?? 'null' };
}

/** The newest id of a stream (`0-0` when it is empty or absent). */
export async function newestId(redis: RedisClient, key: string): Promise<string> {
  const newest = (await redis.xrevrange(key, '+', '-', 'COUNT', 1)) as Entry[];
  return newest[0]?.[0] ?? '0-0';
}

/** An error reply from Redis about the command (WRONGTYPE, …), as opposed to a connection failure. */
const isReplyError = (error: unknown): error is Error => error instanceof (ReplyError as ErrorConstructor);

interface Followed {
  /** The last id this instance delivered: the reader's own position, never a client's. */
  position: string;
  /** Consecutive failures of this key read on its own. */
  failures: number;
  /** While in the future, the key is left out of the shared read (0 = healthy). */
  retryAt: number;
}

const BATCH = 500;
const BLOCK_MS = 250;
const CLUSTER_POLL_MS = 100;
const RETRY_MS = 500;
const MAX_BACKOFF_MS = 10_000;
const backoff = (failures: number) => Math.min(1_000 * 2 ** (failures - 1), MAX_BACKOFF_MS);

/**
 * The one reader per instance behind the Redis bus: it follows the streams local clients watch,
 * each from where this instance started following it (the stream's newest id then), and fans
 * events out to local listeners. Single nodes get one blocking XREAD over all streams (on a
 * connection of its own); a Cluster gets one non-blocking XREAD per slot. A key Redis refuses to
 * read (say, overwritten with a string) is found by reading keys one by one and set aside with
 * backoff, so it never stalls the others.
 */
export class StreamReader {
  private readonly registry = new ListenerRegistry();
  private readonly followed = new Map<string, Followed>();
  private readonly starting = new Map<string, Promise<void>>();
  private readonly reader: RedisClient;
  private readonly cluster: boolean;
  private readonly failures: FailureLog;
  private running = true;
  private wake: (() => void) | null = null;

  constructor(
    private readonly redis: RedisClient,
    logger: FastifyBaseLogger,
    private readonly availability: RedisAvailability,
  ) {
    // A blocking XREAD holds its connection, so the reader gets one of its own.
    this.cluster = redis instanceof Cluster;
    this.reader = redis instanceof Cluster ? redis.duplicate() : (redis as Redis).duplicate({ commandTimeout: undefined, maxRetriesPerRequest: null });
    this.reader.on('error', () => {});
    this.failures = new FailureLog(logger);
    void this.loop();
  }

  async subscribe(key: string, listener: EventListener): Promise<() => void> {
    const remove = this.registry.add(key, listener);
    const unsubscribe = () => {
      remove();
      if (!this.registry.has(key)) this.unfollow(key);
    };
    try {
      await this.follow(key);
    } catch (error) {
      unsubscribe();
      throw error;
    }
    return unsubscribe;
  }

  /** The id this instance has delivered `key` up to (everything after it reaches the listeners), if followed. */
  position(key: string): string | null {
    return this.followed.get(key)?.position ?? null;
  }

  async close(): Promise<void> {
    this.running = false;
    this.wake?.();
    this.reader.disconnect();
  }

  /** Starts following `key` from its newest id; concurrent subscribers share one lookup. */
  private follow(key: string): Promise<void> {
    if (this.followed.has(key)) return Promise.resolve();
    let starting = this.starting.get(key);
    if (!starting) {
      // A subscriber waits on this lookup: fail fast while Redis is unreachable, bounded otherwise.
      starting = this.availability
        .run(() => newestId(this.redis, key))
        .then((position) => {
          if (!this.registry.has(key) || this.followed.has(key)) return;
          this.followed.set(key, { position, failures: 0, retryAt: 0 });
          this.wake?.();
        })
        .catch((error: unknown) => {
          const cause = (error as Error).cause ?? error;
          if (isReplyError(cause)) this.failures.failed(key, { stream: key, reason: cause.message }, 'event stream cannot be followed');
          throw error;
        })
        .finally(() => this.starting.delete(key));
      this.starting.set(key, starting);
    }
    return starting;
  }

  private unfollow(key: string): void {
    this.followed.delete(key);
    this.failures.forget(key);
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const now = Date.now();
      const healthy: string[] = [];
      const due: string[] = [];
      let nextRetry = Infinity;
      for (const [key, state] of this.followed) {
        if (state.retryAt === 0) healthy.push(key);
        else if (state.retryAt <= now) due.push(key);
        else nextRetry = Math.min(nextRetry, state.retryAt);
      }
      if (healthy.length === 0 && due.length === 0) {
        await this.idle(nextRetry === Infinity ? undefined : nextRetry - now);
        continue;
      }
      try {
        let delivered = due.length > 0 ? await this.readEach(due) : 0;
        if (healthy.length > 0) delivered += this.cluster ? await this.pollSlots(healthy) : await this.readTogether(healthy, true);
        this.failures.recovered('*', {}, 'event stream reader recovered');
        if (this.cluster && delivered === 0) await sleep(CLUSTER_POLL_MS);
      } catch (error) {
        if (!this.running) return;
        this.failures.failed('*', { reason: (error as Error).message }, 'event stream reader failed; retrying');
        await sleep(RETRY_MS);
      }
    }
  }

  /** One XREAD over `keys`; if Redis refuses it, the keys are read one by one to isolate the culprit. */
  private async readTogether(keys: string[], block: boolean): Promise<number> {
    try {
      return this.deliver(await this.xread(keys, block));
    } catch (error) {
      if (!isReplyError(error)) throw error;
      return this.readEach(keys);
    }
  }

  /** Reads each key alone (non-blocking): refused keys are set aside with backoff, the others rejoin. */
  private async readEach(keys: string[]): Promise<number> {
    const outcomes = await Promise.allSettled(keys.map((key) => this.xread([key], false)));
    let delivered = 0;
    let connectionError: unknown = null;
    outcomes.forEach((outcome, i) => {
      const key = keys[i]!;
      const state = this.followed.get(key);
      if (!state) return;
      if (outcome.status === 'fulfilled') {
        if (state.failures > 0) this.failures.recovered(key, { stream: key }, 'event stream readable again');
        state.failures = 0;
        state.retryAt = 0;
        delivered += this.deliver(outcome.value);
      } else if (isReplyError(outcome.reason)) {
        state.failures++;
        state.retryAt = Date.now() + backoff(state.failures);
        this.failures.failed(key, { stream: key, reason: outcome.reason.message }, 'event stream unreadable; set aside from the shared reader, retrying with backoff');
      } else {
        connectionError = outcome.reason;
      }
    });
    if (connectionError) throw connectionError;
    return delivered;
  }

  /** Cluster: one non-blocking XREAD per slot holding watched streams (multi-key reads must stay in one slot). */
  private async pollSlots(keys: string[]): Promise<number> {
    const bySlot = new Map<number, string[]>();
    for (const key of keys) {
      const slot = calculateSlot(key);
      bySlot.set(slot, [...(bySlot.get(slot) ?? []), key]);
    }
    const counts = await Promise.all([...bySlot.values()].map((group) => this.readTogether(group, false)));
    return counts.reduce((sum, n) => sum + n, 0);
  }

  private async xread(keys: string[], block: boolean): Promise<ReadResult> {
    const ids = keys.map((key) => this.followed.get(key)?.position ?? '$');
    const result = block
      ? await this.reader.xread('COUNT', BATCH, 'BLOCK', BLOCK_MS, 'STREAMS', ...keys, ...ids)
      : await this.reader.xread('COUNT', BATCH, 'STREAMS', ...keys, ...ids);
    return (result as ReadResult | null) ?? [];
  }

  /** Emits entries past this instance's position (a read that raced an unfollow/refollow may carry older ones). */
  private deliver(result: ReadResult): number {
    let delivered = 0;
    for (const [key, entries] of result) {
      for (const entry of entries) {
        const state = this.followed.get(key);
        if (!state || compareIds(entry[0], state.position) <= 0) continue;
        state.position = entry[0];
        this.registry.emit(key, toEvent(entry));
        delivered++;
      }
    }
    return delivered;
  }

  private async idle(ms: number | undefined): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.wake = resolve;
      if (ms !== undefined) timer = setTimeout(resolve, ms);
    });
    clearTimeout(timer);
    this.wake = null;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
