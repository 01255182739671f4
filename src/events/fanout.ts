import { streamKey, type EventBus, type StreamEvent } from './bus.js';

/** One open stream as the fan-out sees it. */
export interface Sink {
  /** Takes `event`, whose wire frame is `frame` (the same Buffer for every sink); true if it was written. */
  deliver(event: StreamEvent, frame: Buffer): boolean;
}

// SSE clients end a line at CRLF, a lone LF or a lone CR: anything less lets an event a service
// XADDs directly (type or data holding a line break) write fields of its own, such as `id:`.
const LINE_BREAK = /\r\n|\r|\n/;

/**
 * The SSE frame of an event: `id:`, `event:` and one `data:` line per line of its data (the client
 * joins them back with LF). A type cannot span lines in SSE: its line breaks are removed.
 */
export function eventFrame(event: StreamEvent): Buffer {
  const data = LINE_BREAK.test(event.data) ? event.data.split(LINE_BREAK).join('\ndata: ') : event.data;
  const type = LINE_BREAK.test(event.type) ? event.type.replace(/[\r\n]/g, '') || 'message' : event.type;
  return Buffer.from(`id: ${event.id}\nevent: ${type}\ndata: ${data}\n\n`);
}

/** The local streams of one (channel, tenant): one bus subscription between them. */
class Group {
  readonly sinks = new Set<Sink>();
  unsubscribe: (() => void) | null = null;
  closed = false;
  readonly ready: Promise<void>;

  constructor(bus: EventBus, channel: string, tenant: string, onDelivered: (count: number) => void) {
    this.ready = bus
      .subscribe(channel, tenant, (event) => {
        // Built once per event, written to every stream of the tenant.
        const frame = eventFrame(event);
        let delivered = 0;
        for (const sink of this.sinks) if (sink.deliver(event, frame)) delivered++;
        onDelivered(delivered);
      })
      .then((unsubscribe) => {
        if (this.closed) unsubscribe();
        else this.unsubscribe = unsubscribe;
      });
  }

  close(): void {
    this.closed = true;
    this.unsubscribe?.();
  }
}

/**
 * Fan-out of a process's event streams: the streams of one (channel, tenant) share one bus
 * subscription, each event's frame is built once for all of them, and a write never waits for a
 * client (a write queues in memory; the sink decides when a client is too far behind).
 */
export class Fanout {
  private readonly groups = new Map<string, Group>();

  constructor(
    private readonly bus: EventBus,
    private readonly onDelivered: (count: number) => void,
  ) {}

  /**
   * Adds `sink` to its stream; resolves once live delivery to it is in place (every event added from
   * then on reaches it), or rejects, with the sink removed, if the stream cannot be followed now.
   * `leave` takes it out again (no closure per sink: a stream keeps nothing for it).
   */
  async join(channel: string, tenant: string, sink: Sink): Promise<void> {
    const key = streamKey(channel, tenant);
    let group = this.groups.get(key);
    if (!group) this.groups.set(key, (group = new Group(this.bus, channel, tenant, this.onDelivered)));
    group.sinks.add(sink);
    try {
      await group.ready;
    } catch (error) {
      // A failed subscription is not reused: the next stream of this tenant tries afresh.
      if (this.groups.get(key) === group) this.groups.delete(key);
      group.sinks.delete(sink);
      if (group.sinks.size === 0) group.close();
      throw error;
    }
  }

  leave(channel: string, tenant: string, sink: Sink): void {
    const key = streamKey(channel, tenant);
    const group = this.groups.get(key);
    if (!group || !group.sinks.delete(sink) || group.sinks.size > 0) return;
    group.close();
    this.groups.delete(key);
  }
}
