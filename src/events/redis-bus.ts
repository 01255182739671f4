import type { FastifyBaseLogger } from 'fastify';
import { RedisAvailability } from '../stores/redis-availability.js';
import type { RedisClient } from '../stores/redis.js';
import { streamKey, type EventBus, type EventListener, type StreamEvent } from './bus.js';
import { MAX_EVENT_ID } from './event-id.js';
import { newestId, StreamReader, toEvent, type Entry } from './redis-reader.js';

/**
 * Redis Streams as the event bus: services `XADD <channel>:tenant:<id> * type <t> data <json>`,
 * the stream id becomes the SSE id (so replay is exact), history is capped with MAXLEN. Each
 * instance runs ONE reader (see StreamReader) and fans events out locally, so every instance
 * delivers each event once to each of its subscribers. A client's replay is its own XREVRANGE;
 * its cursor never reaches the shared reader.
 */
export class RedisEventBus implements EventBus {
  private readonly reader: StreamReader;

  constructor(
    private readonly redis: RedisClient,
    private readonly historySize: number,
    logger: FastifyBaseLogger,
    private readonly availability = RedisAvailability.of(redis),
  ) {
    this.reader = new StreamReader(redis, logger, availability);
  }

  async publish(channel: string, tenantId: string, type: string, data: string): Promise<string> {
    const key = streamKey(channel, tenantId);
    const id = await this.ask(() => this.redis.xadd(key, 'MAXLEN', '~', String(this.historySize), '*', 'type', type, 'data', data));
    return id!;
  }

  latestId(channel: string, tenantId: string): Promise<string> {
    return this.ask(() => newestId(this.redis, streamKey(channel, tenantId)));
  }

  livePosition(channel: string, tenantId: string): string | null {
    // While Redis is unreachable the reader is not following anything: a new stream asks the store
    // (and is refused) instead of opening on a position nothing will advance.
    if (!this.availability.usable()) return null;
    return this.reader.position(streamKey(channel, tenantId));
  }

  subscribe(channel: string, tenantId: string, listener: EventListener): Promise<() => void> {
    return this.reader.subscribe(streamKey(channel, tenantId), listener);
  }

  /** The newest `historySize` entries after `afterId`, so that replay joins the live events without a gap. */
  async replay(channel: string, tenantId: string, afterId: string): Promise<StreamEvent[]> {
    if (afterId === MAX_EVENT_ID) return []; // nothing comes after it (and Redis refuses `(` on it)
    const key = streamKey(channel, tenantId);
    const entries = (await this.ask(() => this.redis.xrevrange(key, '+', `(${afterId}`, 'COUNT', this.historySize))) as Entry[];
    return entries.reverse().map(toEvent);
  }

  async close(): Promise<void> {
    await this.reader.close();
  }

  /** Request-path calls fail fast while Redis is unreachable and are bounded otherwise (503 for the caller). */
  private ask<T>(command: () => Promise<T>): Promise<T> {
    return this.availability.run(command);
  }
}
