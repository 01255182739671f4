/**
 * Per-service circuit breaker: closed → open after `failureThreshold` failures within `windowMs` →
 * after `resetTimeoutMs` half-open, letting exactly one probe through → closed on its success, open
 * again on its failure.
 *
 * Written here rather than with opossum: opossum wraps a promise-returning action and opens on a
 * failure *percentage*; a streaming proxy reports the outcome through callbacks (headers received,
 * upstream error) and the contract is a failure *count* in a window with a single probe.
 */
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  failureThreshold: number;
  windowMs: number;
  resetTimeoutMs: number;
}

export class CircuitBreaker {
  private failures: number[] = [];
  private openedAt = 0;
  private probeInFlight = false;
  private _state: BreakerState = 'closed';

  constructor(
    private readonly options: BreakerOptions,
    private readonly now: () => number = Date.now,
    private readonly onChange: (state: BreakerState) => void = () => {},
  ) {}

  get state(): BreakerState {
    if (this._state === 'open' && this.now() - this.openedAt >= this.options.resetTimeoutMs) this.transition('half-open');
    return this._state;
  }

  /** Whether a request may go upstream now; in half-open only the one probe may. */
  tryAcquire(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'half-open' && !this.probeInFlight) {
      this.probeInFlight = true;
      return true;
    }
    return false;
  }

  /** Seconds until a probe will be allowed (for `Retry-After`). */
  retryAfterSeconds(): number {
    const remaining = this.options.resetTimeoutMs - (this.now() - this.openedAt);
    return Math.max(1, Math.ceil(remaining / 1000));
  }

  recordSuccess(): void {
    if (this._state === 'half-open') {
      this.probeInFlight = false;
      this.failures = [];
      this.transition('closed');
    }
  }

  recordFailure(): void {
    const now = this.now();
    if (this._state === 'half-open') {
      this.probeInFlight = false;
      this.open(now);
      return;
    }
    this.failures = this.failures.filter((at) => now - at < this.options.windowMs);
    this.failures.push(now);
    if (this._state === 'closed' && this.failures.length >= this.options.failureThreshold) this.open(now);
  }

  /** A request that was allowed but never produced an outcome (client went away): free the probe slot. */
  release(): void {
    if (this._state === 'half-open') this.probeInFlight = false;
  }

  private open(now: number): void {
    this.openedAt = now;
    this.failures = [];
    this.transition('open');
  }

  private transition(state: BreakerState): void {
    if (this._state === state) return;
    this._state = state;
    this.onChange(state);
  }
}
