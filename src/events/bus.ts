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
  /** The newest id in the stream now (`0-0` when empty): where a fresh subscriber starts. */
  latestId(channel: string, tenantId: string): Promise<string>;
  /** Live events after `fromId`; returns the unsubscribe function. */
  subscribe(channel: string, tenantId: string, fromId: string, listener: EventListener): () => void;
  /** Events after `afterId` still in the bounded history, oldest first. */
  replay(channel: string, tenantId: string, afterId: string): Promise<StreamEvent[]>;
  close(): Promise<void>;
}

export function compareIds(a: string, b: string): number {
  const [aMs = 0, aSeq = 0] = a.split('-').map(Number);
  const [bMs = 0, bSeq = 0] = b.split('-').map(Number);
  return aMs - bMs || aSeq - bSeq;
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
      if (set.size === 0) this.listeners.delete(key);
    };
  }

  keys(): string[] {
    return [...this.listeners.keys()];
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
    const now = Date.now();
    this.seq = now === this.lastMs ? this.seq + 1 : 0;
    this.lastMs = Math.max(now, this.lastMs);
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

  subscribe(channel: string, tenantId: string, _fromId: string, listener: EventListener): () => void {
    // In-process delivery is synchronous: nothing can fall between `latestId` and here.
    return this.registry.add(streamKey(channel, tenantId), listener);
  }

  async replay(channel: string, tenantId: string, afterId: string): Promise<StreamEvent[]> {
    return (this.history.get(streamKey(channel, tenantId)) ?? []).filter((event) => compareIds(event.id, afterId) > 0);
  }

  async close(): Promise<void> {}
}
