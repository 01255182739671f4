import { Writable } from 'node:stream';
import { EventSource } from 'eventsource';
import { Redis, type Command } from 'ioredis';
import { beforeAll, describe, expect, it } from 'vitest';
import { compareIds, parseEventId } from '../../src/events/event-id.js';
import { eventually } from '../helpers/eventually.js';
import { attemptEventStream, openEventStream, type StreamClient } from '../helpers/sse.js';
import { eventStreamSuite } from '../helpers/event-stream-suite.js';
import type { Stack } from '../helpers/stack.js';

// The largest id Redis can hold, and one it refuses outright (the ms part overflows 64 bits).
const MAX_ID = '18446744073709551615-18446744073709551615';
const OVERFLOWING_ID = '99999999999999999999999-0';

const suite = eventStreamSuite();
const stack = suite.stack;

const xadd = (tenant: string, data: unknown) => suite.redis.xadd(`alerts:tenant:${tenant}`, '*', 'type', 'alert', 'data', JSON.stringify(data));

async function listen(target: Stack, claims: Record<string, unknown>, lastEventId?: string): Promise<StreamClient> {
  const client = openEventStream(target.url, { ...(await target.bearer(claims)), ...(lastEventId ? { 'last-event-id': lastEventId } : {}) });
  await client.opened;
  return client;
}

describe('event ids', () => {
  it('accepts exactly what Redis accepts: ms-seq or ms, each an unsigned 64-bit integer', () => {
    expect(parseEventId('1700000000000-3')).toBe('1700000000000-3');
    expect(parseEventId('1700000000000')).toBe('1700000000000-0');
    expect(parseEventId('0-0')).toBe('0-0');
    expect(parseEventId('007-01')).toBe('7-1');
    expect(parseEventId(MAX_ID)).toBe(MAX_ID);
    for (const bad of [OVERFLOWING_ID, '18446744073709551616-0', '1-18446744073709551616', '-1-0', '1-2-3', '1.5-0', ' 1-0', '1-', '', 'abc', '1e3-0', `${'1'.repeat(500)}-0`]) {
      expect(parseEventId(bad), bad).toBeNull();
    }
  });

  it('compares as 64-bit integers, beyond the precision of a JavaScript number', () => {
    expect(compareIds('9007199254740993-0', '9007199254740992-0')).toBeGreaterThan(0);
    expect(compareIds('1-18446744073709551615', '1-18446744073709551614')).toBeGreaterThan(0);
    expect(compareIds('2-0', '10-0')).toBeLessThan(0);
    expect(compareIds('5-5', '5-5')).toBe(0);
  });
});

describe('a client cursor never moves or breaks the shared Redis reader', () => {
  let gateway: Stack;
  beforeAll(async () => {
    gateway = await stack();
  });

  it('an id Redis refuses, sent first by one tenant, does not stop another tenant', async () => {
    const acme = await listen(gateway, { sub: 'u-acme-bad', tenant_id: 'acme-1' }, OVERFLOWING_ID);
    const globex = await listen(gateway, { sub: 'u-globex', tenant_id: 'globex-1' });
    await xadd('globex-1', { n: 1 });
    await xadd('acme-1', { n: 2 });
    await eventually(() => expect(globex.received.map((e) => e.data)).toEqual([{ n: 1 }]));
    // The sender of the bad id is served from now, like a client without one.
    await eventually(() => expect(acme.received.map((e) => e.data)).toEqual([{ n: 2 }]));
    acme.source.close();
    globex.source.close();
  });

  it('a future id, sent first, starves neither the other users of the tenant nor its sender', async () => {
    await xadd('acme-2', { n: 0 });
    const future = await listen(gateway, { sub: 'u-acme-future', tenant_id: 'acme-2' }, MAX_ID);
    const other = await listen(gateway, { sub: 'u-acme-other', tenant_id: 'acme-2' });
    await xadd('acme-2', { n: 1 });
    await eventually(() => expect(other.received.map((e) => e.data)).toEqual([{ n: 1 }]));
    await eventually(() => expect(future.received.map((e) => e.data)).toEqual([{ n: 1 }]));
    future.source.close();
    other.source.close();
  });

  it('an old id replays that client only: others neither receive history nor repeats', async () => {
    const first = await xadd('acme-3', { n: 1 });
    await xadd('acme-3', { n: 2 });
    const live = await listen(gateway, { sub: 'u-live', tenant_id: 'acme-3' });
    const behind = await listen(gateway, { sub: 'u-behind', tenant_id: 'acme-3' }, '0-0');
    const partly = await listen(gateway, { sub: 'u-partly', tenant_id: 'acme-3' }, first!);
    await xadd('acme-3', { n: 3 });
    await eventually(() => expect(behind.received.map((e) => e.data)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]));
    await eventually(() => expect(partly.received.map((e) => e.data)).toEqual([{ n: 2 }, { n: 3 }]));
    await eventually(() => expect(live.received.map((e) => e.data)).toEqual([{ n: 3 }]));
    for (const client of [live, behind, partly]) client.source.close();
  });
});

describe('opening a stream of a followed tenant', () => {
  it('asks Redis nothing about the stream: the reader already knows where live delivery starts', async () => {
    const counting = new Redis(suite.server.url());
    let reads = 0;
    const send = counting.sendCommand.bind(counting);
    counting.sendCommand = (command: Command, ...rest: unknown[]) => {
      if (/^x(range|revrange)$/i.test(command.name)) reads++;
      return send(command, ...(rest as []));
    };
    try {
      const gateway = await stack({ redis: counting });
      await xadd('acme-open', { n: 0 });
      const first = await listen(gateway, { sub: 'u-open-0', tenant_id: 'acme-open' });
      const afterFirst = reads; // the reader's one look at the stream's newest id
      expect(afterFirst).toBe(1);
      const more = await Promise.all([1, 2, 3, 4, 5].map((i) => listen(gateway, { sub: `u-open-${i}`, tenant_id: 'acme-open' })));
      expect(reads).toBe(afterFirst);
      await xadd('acme-open', { n: 1 });
      for (const client of [first, ...more]) await eventually(() => expect(client.received.map((event) => event.data)).toEqual([{ n: 1 }]));
      for (const client of [first, ...more]) client.source.close();
    } finally {
      counting.disconnect();
    }
  });
});

describe('events a service XADDs directly', () => {
  it('cannot set their own id (or any other field) with a CR in the data or the type', async () => {
    const gateway = await stack();
    const source = new EventSource(`${gateway.url}/api/v1/alerts/stream`, {
      fetch: async (input, init) => fetch(input, { ...init, headers: { ...init?.headers, ...(await gateway.bearer({ sub: 'u-cr', tenant_id: 'acme-cr' })) } }),
    });
    const received: { type: string; id: string; data: string }[] = [];
    // The type as the client would read it with and without the line break.
    for (const type of ['alert', 'alertid: 1-1', 'alertid: 2-2'])
      source.addEventListener(type, (event) => received.push({ type, id: event.lastEventId, data: event.data }));
    try {
      await new Promise<void>((resolve, reject) => {
        source.onopen = () => resolve();
        source.onerror = (error) => reject(new Error(`event stream failed: ${error.message ?? ''}`));
      });
      const key = 'alerts:tenant:acme-cr';
      const ids = [
        await suite.redis.xadd(key, '*', 'type', 'alert', 'data', '{"n":1}\rid: 1-1'),
        await suite.redis.xadd(key, '*', 'type', 'alert\rid: 2-2', 'data', '{"n":2}'),
        await suite.redis.xadd(key, '*', 'type', 'alert', 'data', '{"n":3}\r\nid: 3-3\r'),
      ];
      await eventually(() => expect(received).toHaveLength(3));
      // Every event carries the id Redis gave it (what the client would send back as Last-Event-ID).
      expect(received.map((event) => event.id)).toEqual(ids);
      expect(received).toEqual([
        { type: 'alert', id: ids[0], data: '{"n":1}\nid: 1-1' },
        { type: 'alertid: 2-2', id: ids[1], data: '{"n":2}' },
        { type: 'alert', id: ids[2], data: '{"n":3}\nid: 3-3\n' },
      ]);
    } finally {
      source.close();
    }
  });
});

describe('a Redis error on one stream key', () => {
  it('does not stall the other streams, is logged once, and the key recovers', async () => {
    const lines: string[] = [];
    const logStream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    const gateway = await stack({ logger: { level: 'info', stream: logStream } });
    const flaky = await listen(gateway, { sub: 'u-flaky', tenant_id: 'flaky' });
    const steady = await listen(gateway, { sub: 'u-steady', tenant_id: 'steady' });
    await xadd('flaky', { n: 1 });
    await eventually(() => expect(flaky.received).toHaveLength(1));

    // Someone overwrites one tenant's stream with a string: every XREAD naming it fails (WRONGTYPE).
    await suite.redis.multi().del('alerts:tenant:flaky').set('alerts:tenant:flaky', 'not a stream').exec();
    await xadd('steady', { n: 1 });
    await xadd('steady', { n: 2 });
    await eventually(() => expect(steady.received.map((e) => e.data)).toEqual([{ n: 1 }, { n: 2 }]));

    // Retried with backoff, but not logged on every retry (the old reader logged every 500 ms).
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const failures = lines.filter((line) => line.includes('alerts:tenant:flaky') && line.includes('"level":40'));
    expect(failures).toHaveLength(1);

    await suite.redis.del('alerts:tenant:flaky');
    await xadd('flaky', { n: 2 });
    await eventually(() => expect(flaky.received.map((e) => e.data)).toEqual([{ n: 1 }, { n: 2 }]));
    await xadd('steady', { n: 3 });
    await eventually(() => expect(steady.received).toHaveLength(3));
    flaky.source.close();
    steady.source.close();
  });
});

describe('on the in-process bus', () => {
  it('ids beyond anything published are served from now, not starved', async () => {
    const gateway = await stack({ memoryBus: true });
    const publish = (n: number) => gateway.gateway.events.publish('alerts', 'acme', 'alert', JSON.stringify({ n }));
    await publish(0);
    const clients = await Promise.all([
      listen(gateway, { sub: 'u-max', tenant_id: 'acme' }, MAX_ID),
      listen(gateway, { sub: 'u-overflow', tenant_id: 'acme' }, OVERFLOWING_ID),
      listen(gateway, { sub: 'u-plain', tenant_id: 'acme' }),
    ]);
    await publish(1);
    for (const client of clients) await eventually(() => expect(client.received.map((e) => e.data)).toEqual([{ n: 1 }]));
    for (const client of clients) client.source.close();
  });
});

describe('stream slots', () => {
  it('concurrent opens by one user admit exactly the per-user cap; another user of the tenant still gets a stream', async () => {
    const gateway = await stack({ sse: { maxConnectionsPerUser: 3 } });
    const auth = await gateway.bearer({ sub: 'u-greedy', tenant_id: 'acme' });
    const attempts = await Promise.all(Array.from({ length: 40 }, () => attemptEventStream(gateway.url, auth)));
    expect(attempts.filter((a) => a.status === 200)).toHaveLength(3);
    expect(attempts.filter((a) => a.status === 429).every((a) => a.code === 'TOO_MANY_STREAMS')).toBe(true);
    expect(attempts.filter((a) => a.status !== 200 && a.status !== 429)).toEqual([]);

    const other = await attemptEventStream(gateway.url, await gateway.bearer({ sub: 'u-modest', tenant_id: 'acme' }));
    expect(other.status).toBe(200);

    // Closing a stream gives its slot back.
    await Promise.all(attempts.map((a) => a.close()));
    await other.close();
    await eventually(async () => expect((await gateway.gateway.metrics.sseConnections.get()).values[0]?.value).toBe(0));
    const again = await attemptEventStream(gateway.url, auth);
    expect(again.status).toBe(200);
    await again.close();
  });

  it('concurrent opens by many users never overshoot the per-tenant cap', async () => {
    const gateway = await stack({ sse: { maxConnectionsPerTenant: 4 } });
    const auths = await Promise.all(Array.from({ length: 30 }, (_, i) => gateway.bearer({ sub: `u-${i}`, tenant_id: 'acme' })));
    const attempts = await Promise.all(auths.map((auth) => attemptEventStream(gateway.url, auth)));
    expect(attempts.filter((a) => a.status === 200)).toHaveLength(4);
    expect(attempts.filter((a) => a.status === 429)).toHaveLength(26);
    const otherTenant = await attemptEventStream(gateway.url, await gateway.bearer({ sub: 'u-g', tenant_id: 'globex' }));
    expect(otherTenant.status).toBe(200);
    await Promise.all([...attempts, otherTenant].map((a) => a.close()));
  });

  it('a client that disconnects while its stream is being set up gives the slot back', async () => {
    // The gateway's Redis answers stream commands only when the test lets it.
    const slow = new Redis(suite.server.url());
    let entered!: () => void;
    const reachedRedis = new Promise<void>((resolve) => (entered = resolve));
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const send = slow.sendCommand.bind(slow);
    slow.sendCommand = (command: Command, ...rest: unknown[]) => {
      if (/^x(range|revrange)$/i.test(command.name)) {
        entered();
        void gate.then(() => send(command, ...(rest as [])));
        return command.promise;
      }
      return send(command, ...(rest as []));
    };
    try {
      const gateway = await stack({ sse: { maxConnectionsPerTenant: 1 }, redis: slow });
      const auth = await gateway.bearer({ sub: 'u-impatient', tenant_id: 'acme' });
      const controller = new AbortController();
      const attempt = fetch(`${gateway.url}/api/v1/alerts/stream`, { headers: auth, signal: controller.signal }).catch(() => null);
      await reachedRedis;
      controller.abort();
      await attempt;
      const connections = () => new Promise<number>((resolve) => gateway.gateway.app.server.getConnections((_e, n) => resolve(n)));
      await eventually(async () => expect(await connections()).toBe(0));
      release();

      await eventually(async () => {
        const next = await attemptEventStream(gateway.url, auth);
        await next.close();
        expect(next.status).toBe(200);
      });
      await eventually(async () => expect((await gateway.gateway.metrics.sseConnections.get()).values[0]?.value).toBe(0));
    } finally {
      release();
      slow.disconnect();
    }
  });
});

