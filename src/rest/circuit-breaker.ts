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
export type Permit = 'normal' | 'probe';

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

  /**
   * Whether a request may go upstream now: `normal`, `probe` (the one request allowed in
   * half-open), or null. Only the probe's outcome can close or reopen a half-open breaker.
   */
  tryAcquire(): Permit | null {
    const state = this.state;
    if (state === 'closed') return 'normal';
    if (state === 'half-open' && !this.probeInFlight) {
      this.probeInFlight = true;
      return 'probe';
    }
    return null;
  }

  /** Seconds until a probe will be allowed (for `Retry-After`). */
  retryAfterSeconds(): number {
    const remaining = this.options.resetTimeoutMs - (this.now() - this.openedAt);
    return Math.max(1, Math.ceil(remaining / 1000));
  }

  recordSuccess(permit: Permit): void {
    if (permit === 'probe' && this._state === 'half-open') {
      this.probeInFlight = false;
      this.failures = [];
      this.transition('closed');
    }
  }

  recordFailure(permit: Permit): void {
    const now = this.now();
    if (this._state === 'half-open') {
      // Late outcomes of requests admitted before the breaker opened do not decide the probe.
      if (permit !== 'probe') return;
      this.probeInFlight = false;
      this.open(now);
      return;
    }
    this.failures = this.failures.filter((at) => now - at < this.options.windowMs);
    this.failures.push(now);
    if (this._state === 'closed' && this.failures.length >= this.options.failureThreshold) this.open(now);
  }

  /** A probe that never produced an outcome (client went away, its own fault): free the slot. */
  release(permit: Permit): void {
    if (permit === 'probe' && this._state === 'half-open') this.probeInFlight = false;
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
