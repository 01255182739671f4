import { describe, expect, it } from 'vitest';
import { MemoryEventBus, type StreamEvent } from '../../src/events/bus.js';
import { eventFrame, Fanout, type Sink } from '../../src/events/fanout.js';

class RecordingSink implements Sink {
  readonly frames: Buffer[] = [];
  deliver(_event: StreamEvent, frame: Buffer): boolean {
    this.frames.push(frame);
    return true;
  }
}

describe('event fan-out', () => {
  it('frames multi-line data as one data: line per line', () => {
    const frame = eventFrame({ id: '5-0', type: 'alert', data: '{"a":1}\n{"b":2}' }).toString();
    expect(frame).toBe('id: 5-0\nevent: alert\ndata: {"a":1}\ndata: {"b":2}\n\n');
  });

  it('treats CR, CRLF and LF alike in data, and keeps line breaks out of the type, so no field can be injected', () => {
    const frame = eventFrame({ id: '5-0', type: 'alert\rid: 9-9', data: 'a\rid: 9-9\r\nb\nc' }).toString();
    expect(frame).toBe('id: 5-0\nevent: alertid: 9-9\ndata: a\ndata: id: 9-9\ndata: b\ndata: c\n\n');
    expect(eventFrame({ id: '5-0', type: '\r\n', data: '1' }).toString()).toBe('id: 5-0\nevent: message\ndata: 1\n\n');
  });

  it("writes each event once to every stream of its tenant, the same bytes for all, and none to another tenant's or to a stream that left", async () => {
    const bus = new MemoryEventBus(100);
    const counts: number[] = [];
    const fanout = new Fanout(bus, (count) => counts.push(count));
    const [first, second, other, gone] = [new RecordingSink(), new RecordingSink(), new RecordingSink(), new RecordingSink()];
    await fanout.join('alerts', 'acme', first);
    await fanout.join('alerts', 'acme', second);
    await fanout.join('alerts', 'globex', other);
    await fanout.join('alerts', 'acme', gone);
    fanout.leave('alerts', 'acme', gone);

    await bus.publish('alerts', 'acme', 'alert', '{"n":1}');

    expect(first.frames).toHaveLength(1);
    expect(second.frames[0]).toBe(first.frames[0]); // built once, shared
    expect(first.frames[0]!.toString()).toMatch(/^id: \d+-\d+\nevent: alert\ndata: \{"n":1\}\n\n$/);
    expect(other.frames).toHaveLength(0);
    expect(gone.frames).toHaveLength(0);
    expect(counts).toEqual([2]);
  });

  it('a stream that cannot be followed is refused, and the next one of the tenant tries afresh', async () => {
    const bus = new MemoryEventBus(100);
    let refuse = true;
    const subscribe = bus.subscribe.bind(bus);
    // The bus refusing (as the Redis bus does while Redis is down), then recovering.
    bus.subscribe = (channel, tenant, listener) => (refuse ? Promise.reject(new Error('down')) : subscribe(channel, tenant, listener));
    const fanout = new Fanout(bus, () => {});
    await expect(fanout.join('alerts', 'acme', new RecordingSink())).rejects.toThrow('down');
    refuse = false;
    const sink = new RecordingSink();
    await fanout.join('alerts', 'acme', sink);
    await bus.publish('alerts', 'acme', 'alert', '{}');
    expect(sink.frames).toHaveLength(1);
  });
});
