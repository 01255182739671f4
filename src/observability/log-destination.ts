import { pino } from 'pino';

/**
 * Every asynchronous write is a thread-pool round trip (a worker woken, two context switches and a
 * completion back on the event loop), so writes are few and large: one per ~120 request lines.
 */
const LOG_BATCH_BYTES = 32 * 1024;
const LOG_FLUSH_MS = 200;

type Output = ReturnType<typeof pino.destination>;

/**
 * Where the gateway's JSON lines go: stdout through pino's asynchronous destination (sonic-boom). A
 * synchronous write per request blocked the event loop on every line (slow pipes and log collectors
 * included); lines are written in batches of about LOG_BATCH_BYTES, and at least every LOG_FLUSH_MS
 * when traffic is light, so a line is never held longer than that. What is held is written out
 * synchronously when a drain starts (`flushSync`), on process exit (main.ts exits after the drain)
 * and on a crash.
 *
 * The batch is gathered here, and sonic-boom gets one string per batch: given single lines, it
 * appends each to its pending string and measures that string's UTF-8 length on every write, which
 * makes V8 flatten (copy) the whole pending batch once per line — kilobytes of garbage for each
 * ~270-byte request line, three times the young-generation collections in isolation, and 1-3% of the
 * gateway's CPU per proxied request.
 */
export class LogDestination {
  private readonly lines: string[] = [];
  /** UTF-16 units held: the batch size is a threshold, bytes need not be exact. */
  private held = 0;
  private closed = false;
  private readonly timer: NodeJS.Timeout;
  private readonly onExit = (): void => this.flushSync();
  private readonly onBeforeExit = (): void => void this.handOver();

  /**
   * `output` holds what it is given below LOG_BATCH_BYTES until flushed: a full batch goes out at once
   * (asynchronously), a partial one (the timer's, a drain's) stays there until written, synchronously
   * by `flushSync`, so no write can be left in flight when a SIGKILL follows a drain's start.
   */
  constructor(private readonly output: Output = pino.destination({ dest: 1, sync: false, minLength: LOG_BATCH_BYTES, maxWrite: 4 * LOG_BATCH_BYTES })) {
    this.timer = setInterval(() => this.handOverAndFlush(), LOG_FLUSH_MS);
    this.timer.unref();
    // pino flushes its own destination on exit; the lines held here must reach it first.
    process.on('exit', this.onExit);
    process.on('beforeExit', this.onBeforeExit);
  }

  /** pino's destination interface: one serialised line. */
  write(line: string): void {
    if (this.closed) {
      this.output.write(line);
      return;
    }
    this.lines.push(line);
    this.held += line.length;
    if (this.held >= LOG_BATCH_BYTES) this.handOver();
  }

  /** Writes out everything held, synchronously (a drain starting, process exit). */
  flushSync(): void {
    try {
      this.handOver();
      this.output.flushSync();
    } catch {
      // Not open yet or already closed: nothing to write, and pino's exit handler flushes again.
    }
  }

  /** The app is closed: what is held goes out, later lines go straight through, the process hooks are let go. */
  close(): void {
    if (this.closed) return;
    this.handOver();
    this.closed = true;
    clearInterval(this.timer);
    process.off('exit', this.onExit);
    process.off('beforeExit', this.onBeforeExit);
  }

  /** Passes the lines held to the output; false when there were none. */
  private handOver(): boolean {
    if (this.lines.length === 0) return false;
    const batch = this.lines.join('');
    this.lines.length = 0;
    this.held = 0;
    this.output.write(batch);
    return true;
  }

  /** The timer's turn: a partial batch goes out too (asynchronously), so no line waits longer than LOG_FLUSH_MS. */
  private handOverAndFlush(): void {
    try {
      if (this.handOver()) this.output.flush();
    } catch {
      // The output is closed (process exit under way): nothing can be written any more.
    }
  }
}
