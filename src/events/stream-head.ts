import { validateHeaderName, validateHeaderValue } from 'node:http';

/** What every event stream answers with, whatever the pipeline set (a HEAD request gets these too). */
export const STREAM_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
};

/** How a stream's body is framed: it ends when the connection does (no length, no chunks), its last answer. */
const STREAM_FRAMING: Readonly<Record<string, string>> = { connection: 'close' };

/** The stream's own fields as they go on the wire: constants, so written out once, not per open. */
const STREAM_FIELDS = Object.entries({ ...STREAM_HEADERS, ...STREAM_FRAMING })
  .map(([name, value]) => `${name}: ${value}\r\n`)
  .join('');

/** Headers that frame the body: only the stream decides them. */
const FRAMING = new Set(['content-length', 'transfer-encoding', 'keep-alive', 'trailer', ...Object.keys(STREAM_HEADERS), ...Object.keys(STREAM_FRAMING)]);

/**
 * The HTTP/1.1 head of an event stream, as bytes to write on its socket: status 200, the headers
 * the pipeline set (security headers, request id, rate-limit fields, CORS), the stream's own, and
 * `date`. Written by the stream instead of through `ServerResponse` so that Node does not keep the
 * head string and the header table for the connection's whole life, and frames go to the socket
 * without chunk framing per client. Names and values are checked as Node checks them.
 */
export function streamHead(pipelineHeaders: Readonly<Record<string, string | number | readonly string[] | undefined>>, retryMs: number): Buffer {
  let head = 'HTTP/1.1 200 OK\r\n';
  const add = (name: string, value: string) => {
    validateHeaderName(name);
    validateHeaderValue(name, value);
    head += `${name}: ${value}\r\n`;
  };
  for (const [name, value] of Object.entries(pipelineHeaders)) {
    if (value === undefined || FRAMING.has(name.toLowerCase())) continue;
    for (const one of Array.isArray(value) ? value : [value]) add(name, String(one));
  }
  return Buffer.from(`${head}${STREAM_FIELDS}date: ${new Date().toUTCString()}\r\n\r\nretry: ${retryMs}\n\n`, 'latin1');
}
