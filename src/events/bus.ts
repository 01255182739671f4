import { compareIds } from './event-id.js';

/** One event of a tenant's stream. `id` orders events (Redis stream id format: `<ms>-<seq>`). */
export interface StreamEvent {
  readonly id: string;
  readonly type: string;
  /** JSON text, sent as the SSE `data:` line. */
  readonly data: string;
}

export type EventListener = (event: StreamEvent) => void;

/**
 * Per-tenant event streams behind one interface: in-process (one instance) or Redis Streams
 * (`XADD <channel>:tenant:<id>`, shared by every instance). Subscribing is per instance: the bus
 * fans events out to local listeners; it never opens a reader per connection.
 */
export interface EventBus {
  publish(channel: string, tenantId: string, type: string, data: string): Promise<string>;
  /** The newest id in the stream now (`0-0` when empty). */
  latestId(channel: string, tenantId: string): Promise<string>;
  /**
   * The id after which every event of the stream reaches this instance's listeners (the bus's own
   * read position), or null when it does not follow the stream now. A listener subscribed before
   * this is read misses nothing after it: a new stream starts there without asking the store.
   */
  livePosition(channel: string, tenantId: string): string | null;
  /**
   * Registers `listener` for live events and resolves, with the unsubscribe function, once delivery
   * is in place: every event added from then on reaches the listener (some earlier ones may too; the
   * caller de-duplicates by id). Where the bus reads from is its own business, never a client's
   * cursor. Rejects, with the listener removed, when the stream cannot be followed now.
   */
  subscribe(channel: string, tenantId: string, listener: EventListener): Promise<() => void>;
  /** The newest events after `afterId` (a canonical id) still in the bounded history, oldest first. */
  replay(channel: string, tenantId: string, afterId: string): Promise<StreamEvent[]>;
  close(): Promise<void>;
}

export const streamKey = (channel: string, tenantId: string) => `${channel}:tenant:${tenantId}`;

/** Listeners by stream key, shared by both buses. */
export class ListenerRegistry {
  private readonly listeners = new Map<string, Set<EventListener>>();

  add(key: string, listener: EventListener): () => void {
    let set = this.listeners.get(key);
    if (!set) this.listeners.set(key, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(key) === set) this.listeners.delete(key);
    };
  }

  has(key: string): boolean {
    return this.listeners.has(key);
  }

  emit(key: string, event: StreamEvent): void {
    for (const listener of this.listeners.get(key) ?? []) listener(event);
  }
}

export class MemoryEventBus implements EventBus {
  private readonly history = new Map<string, StreamEvent[]>();
  private readonly registry = new ListenerRegistry();
  private lastMs = 0;
  private seq = 0;

  constructor(private readonly historySize: number) {}

  async publish(channel: string, tenantId: string, type: string, data: string): Promise<string> {
    // Ids only grow, even if the clock steps back.
    const now = Date.now();
    if (now > this.lastMs) [this.lastMs, this.seq] = [now, 0];
    else this.seq++;
    const event = { id: `${this.lastMs}-${this.seq}`, type, data };
    const key = streamKey(channel, tenantId);
    const events = this.history.get(key) ?? [];
    events.push(event);
    if (events.length > this.historySize) events.splice(0, events.length - this.historySize);
    this.history.set(key, events);
    this.registry.emit(key, event);
    return event.id;
  }

  async latestId(channel: string, tenantId: string): Promise<string> {
    return this.history.get(streamKey(channel, tenantId))?.at(-1)?.id ?? '0-0';
  }

  livePosition(channel: string, tenantId: string): string | null {
    // Delivery is synchronous: everything published so far has reached the listeners.
    return this.history.get(streamKey(channel, tenantId))?.at(-1)?.id ?? '0-0';
  }

  async subscribe(channel: string, tenantId: string, listener: EventListener): Promise<() => void> {
    // In-process delivery is synchronous: the listener is live as soon as it is registered.
    return this.registry.add(streamKey(channel, tenantId), listener);
  }

  async replay(channel: string, tenantId: string, afterId: string): Promise<StreamEvent[]> {
    return (this.history.get(streamKey(channel, tenantId)) ?? []).filter((event) => compareIds(event.id, afterId) > 0);
  }

  async close(): Promise<void> {}
}
