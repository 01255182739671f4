import { describe, expect, it } from 'vitest';
import { streamHead } from '../../src/events/stream-head.js';

describe('event stream head', () => {
  it("carries the pipeline's headers once, its own framing, a date, then the retry hint", () => {
    const head = streamHead(
      { 'x-request-id': 'r-1', 'x-content-type-options': 'nosniff', 'content-length': 12, 'transfer-encoding': 'chunked', Connection: 'keep-alive', vary: ['origin', 'accept'] },
      3000,
    ).toString('latin1');
    const [lines, body] = head.split('\r\n\r\n') as [string, string];
    expect(body).toBe('retry: 3000\n\n');
    const [status, ...headers] = lines.split('\r\n');
    expect(status).toBe('HTTP/1.1 200 OK');
    expect(headers).toEqual([
      'x-request-id: r-1',
      'x-content-type-options: nosniff',
      'vary: origin',
      'vary: accept',
      'content-type: text/event-stream; charset=utf-8',
      'cache-control: no-cache, no-transform',
      'x-accel-buffering: no',
      'connection: close',
      expect.stringMatching(/^date: \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/),
    ]);
  });

  it('refuses a header that would split the head, as Node does', () => {
    expect(() => streamHead({ 'x-note': 'a\r\nx-injected: 1' }, 3000)).toThrow(/Invalid character/);
    expect(() => streamHead({ 'bad name': 'x' }, 3000)).toThrow(/must be a valid HTTP token/);
  });
});
