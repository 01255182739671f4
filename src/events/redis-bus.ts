import type { FastifyBaseLogger } from 'fastify';
import calculateSlot from 'cluster-key-slot';
import { Cluster, type Redis } from 'ioredis';
import type { RedisClient } from '../stores/redis.js';
import { ListenerRegistry, streamKey, type EventBus, type EventListener, type StreamEvent } from './bus.js';

type Entry = [id: string, fields: string[]];

function toEvent([id, fields]: Entry): StreamEvent {
  const value = (name: string) => {
    const at = fields.indexOf(name);
    return at === -1 || at % 2 === 1 ? undefined : fields[at + 1];
  };
  return { id, type: value('type') ?? 'message', data: value('data') ?? 'null' };
}

/**
 * Redis Streams as the event bus: services `XADD <channel>:tenant:<id> * type <t> data <json>`,
 * the stream id becomes the SSE id (so replay is exact), history is capped with MAXLEN. Each
 * instance runs ONE reader (its own connection, blocking XREAD over the streams its clients
 * watch) and fans events out locally, so every instance delivers each event once to each of its
 * subscribers.
 */
export class RedisEventBus implements EventBus {
  private readonly registry = new ListenerRegistry();
  private readonly lastIds = new Map<string, string>();
  private readonly reader: RedisClient;
  private readonly cluster: boolean;
  private running = true;
  private wake: (() => void) | null = null;

  constructor(
    private readonly redis: RedisClient,
    private readonly historySize: number,
    private readonly logger: FastifyBaseLogger,
  ) {
    // A blocking XREAD holds its connection: the reader gets one of its own. On a Cluster, streams
    // of different tenants live in different slots, so the reader polls each slot's streams instead.
    this.cluster = redis instanceof Cluster;
    this.reader = redis instanceof Cluster ? redis.duplicate() : (redis as Redis).duplicate({ commandTimeout: undefined, maxRetriesPerRequest: null });
    this.reader.on('error', () => {});
    void this.loop();
  }

  async publish(channel: string, tenantId: string, type: string, data: string): Promise<string> {
    const id = await this.redis.xadd(streamKey(channel, tenantId), 'MAXLEN', '~', String(this.historySize), '*', 'type', type, 'data', data);
    return id!;
  }

  async latestId(channel: string, tenantId: string): Promise<string> {
    const newest = (await this.redis.xrevrange(streamKey(channel, tenantId), '+', '-', 'COUNT', 1)) as Entry[];
    return newest[0]?.[0] ?? '0-0';
  }

  subscribe(channel: string, tenantId: string, fromId: string, listener: EventListener): () => void {
    const key = streamKey(channel, tenantId);
    // The first local subscriber sets where the reader starts; later ones join its position and
    // catch up through `replay` (the SSE handler de-duplicates by id).
    if (!this.lastIds.has(key)) this.lastIds.set(key, fromId);
    const remove = this.registry.add(key, listener);
    this.wake?.();
    return () => {
      remove();
      if (!this.registry.keys().includes(key)) this.lastIds.delete(key);
    };
  }

  async replay(channel: string, tenantId: string, afterId: string): Promise<StreamEvent[]> {
    const entries = (await this.redis.xrange(streamKey(channel, tenantId), `(${afterId}`, '+', 'COUNT', this.historySize)) as Entry[];
    return entries.map(toEvent);
  }

  async close(): Promise<void> {
    this.running = false;
    this.wake?.();
    this.reader.disconnect();
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const keys = [...this.lastIds.keys()];
      if (keys.length === 0) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = null;
        continue;
      }
      try {
        const results = this.cluster ? await this.pollSlots(keys) : await this.blockingRead(keys);
        let delivered = 0;
        for (const [key, entries] of results) {
          for (const entry of entries) {
            if (this.lastIds.has(key)) this.lastIds.set(key, entry[0]);
            this.registry.emit(key, toEvent(entry));
            delivered++;
          }
        }
        if (this.cluster && delivered === 0) await new Promise((resolve) => setTimeout(resolve, 100));
      } catch (error) {
        if (!this.running) return;
        this.logger.warn({ reason: (error as Error).message }, 'event stream reader failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }

  /** Short blocks, so that streams subscribed meanwhile join the next read. */
  private async blockingRead(keys: string[]): Promise<[string, Entry[]][]> {
    const ids = keys.map((key) => this.lastIds.get(key)!);
    return ((await this.reader.xread('COUNT', 500, 'BLOCK', 250, 'STREAMS', ...keys, ...ids)) as [string, Entry[]][] | null) ?? [];
  }

  /** Cluster: one non-blocking XREAD per slot holding watched streams (multi-key reads must stay in one slot). */
  private async pollSlots(keys: string[]): Promise<[string, Entry[]][]> {
    const bySlot = new Map<number, string[]>();
    for (const key of keys) bySlot.set(calculateSlot(key), [...(bySlot.get(calculateSlot(key)) ?? []), key]);
    const reads = await Promise.all(
      [...bySlot.values()].map(
        async (group) =>
          ((await this.reader.xread('COUNT', 500, 'STREAMS', ...group, ...group.map((key) => this.lastIds.get(key)!))) as [string, Entry[]][] | null) ?? [],
      ),
    );
    return reads.flat();
  }
}
