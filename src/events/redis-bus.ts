import type { FastifyBaseLogger } from 'fastify';
import type { Redis } from 'ioredis';
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
  private readonly reader: Redis;
  private running = true;
  private wake: (() => void) | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly historySize: number,
    private readonly logger: FastifyBaseLogger,
  ) {
    // A blocking XREAD holds its connection: the reader gets one of its own.
    this.reader = redis.duplicate({ commandTimeout: undefined, maxRetriesPerRequest: null });
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
        // Short blocks so that streams subscribed meanwhile join the next read.
        const result = (await this.reader.xread('COUNT', 500, 'BLOCK', 250, 'STREAMS', ...keys, ...keys.map((k) => this.lastIds.get(k)!))) as
          | [string, Entry[]][]
          | null;
        for (const [key, entries] of result ?? []) {
          for (const entry of entries) {
            if (this.lastIds.has(key)) this.lastIds.set(key, entry[0]);
            this.registry.emit(key, toEvent(entry));
          }
        }
      } catch (error) {
        if (!this.running) return;
        this.logger.warn({ reason: (error as Error).message }, 'event stream reader failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }
}
