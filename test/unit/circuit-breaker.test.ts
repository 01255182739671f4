import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from '../../src/rest/circuit-breaker.js';

describe('circuit breaker', () => {
  const make = () => {
    let now = 0;
    const breaker = new CircuitBreaker({ failureThreshold: 3, windowMs: 1_000, resetTimeoutMs: 5_000 }, () => now);
    return { breaker, advance: (ms: number) => (now += ms) };
  };

  it('opens after N failures within the window, not when they are spread out', () => {
    const { breaker, advance } = make();
    breaker.recordFailure('normal');
    advance(600);
    breaker.recordFailure('normal');
    advance(600); // the first failure left the window
    breaker.recordFailure('normal');
    expect(breaker.state).toBe('closed');
    breaker.recordFailure('normal');
    expect(breaker.state).toBe('open');
    expect(breaker.tryAcquire()).toBeNull();
    expect(breaker.retryAfterSeconds()).toBe(5);
  });

  it('half-opens after the reset timeout with exactly one probe, which decides', () => {
    const { breaker, advance } = make();
    for (let i = 0; i < 3; i++) breaker.recordFailure('normal');
    advance(5_000);
    expect(breaker.state).toBe('half-open');
    expect(breaker.tryAcquire()).toBe('probe');
    expect(breaker.tryAcquire()).toBeNull();
    // A late outcome of a request admitted earlier does not decide anything.
    breaker.recordSuccess('normal');
    breaker.recordFailure('normal');
    expect(breaker.state).toBe('half-open');
    breaker.recordFailure('probe');
    expect(breaker.state).toBe('open');
    advance(5_000);
    expect(breaker.tryAcquire()).toBe('probe');
    breaker.recordSuccess('probe');
    expect(breaker.state).toBe('closed');
    expect(breaker.tryAcquire()).toBe('normal');
  });

  it('a probe abandoned by its client frees the slot', () => {
    const { breaker, advance } = make();
    for (let i = 0; i < 3; i++) breaker.recordFailure('normal');
    advance(5_000);
    expect(breaker.tryAcquire()).toBe('probe');
    breaker.release('probe');
    expect(breaker.tryAcquire()).toBe('probe');
  });
});
