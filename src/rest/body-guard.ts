import { Transform, type Readable, type TransformCallback } from 'node:stream';

export type BodyViolation = 'too-large' | 'idle';

/**
 * A REST request body on its way upstream (streamed, never buffered), cut when:
 * - it crosses the route's limit: a chunked upload has no Content-Length to check up front;
 * - the client pauses longer than `idleMs` between two chunks — nginx's `client_body_timeout`, an
 *   idle timeout between reads rather than a total (the server's `requestTimeout` is the total).
 *   Backpressure is not the client's pause: while the upstream is slow to read (the source paused,
 *   or bytes waiting in it), the clock is re-armed instead of firing.
 *
 * On a violation it emits `violation` (the proxy answers 413/408 and cancels the upstream exchange)
 * and destroys itself, so an upstream request still reading it is aborted.
 */
export class BodyGuard extends Transform {
  violation: BodyViolation | null = null;
  private seen = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly source: Readable,
    private readonly limit: number,
    private readonly idleMs: number,
  ) {
    super();
    // The upstream client consumes (and reports) this stream's errors; this listener only guarantees
    // that an error raised before or after it listens can never become an uncaught exception.
    this.on('error', () => {});
    source.on('error', (error) => this.destroy(error));
    this.arm();
    source.pipe(this);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.limit) {
      this.fail('too-large');
      callback();
      return;
    }
    this.arm();
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.disarm();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.disarm();
    callback(error);
  }

  /** One timer per upload, pushed back on each chunk (`refresh`), not a new timer per chunk. */
  private arm(): void {
    if (this.timer) this.timer.refresh();
    else this.timer = setTimeout(() => this.onIdle(), this.idleMs);
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private onIdle(): void {
    if (this.destroyed || this.writableEnded) return;
    if (this.source.isPaused() || this.source.readableLength > 0) {
      // The timer has fired: it is re-armed by a refresh like any other.
      this.arm();
      return;
    }
    this.fail('idle');
  }

  private fail(violation: BodyViolation): void {
    if (this.violation) return;
    this.violation = violation;
    this.disarm();
    this.source.unpipe(this);
    this.emit('violation', violation);
    const error = Object.assign(new Error(violation === 'idle' ? 'request body idle' : 'request body too large'), {
      code: violation === 'idle' ? 'GATEWAY_BODY_IDLE' : 'FST_ERR_CTP_BODY_TOO_LARGE',
    });
    this.destroy(error);
  }
}
