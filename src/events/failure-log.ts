import type { FastifyBaseLogger } from 'fastify';

/**
 * Logs a recurring failure of one thing (a stream key, the reader's connection) without flooding:
 * the first failure, then at most one line per `intervalMs` with the count suppressed meanwhile,
 * and the recovery once.
 */
export class FailureLog {
  private readonly failing = new Map<string, { loggedAt: number; suppressed: number }>();

  constructor(
    private readonly logger: FastifyBaseLogger,
    private readonly intervalMs = 60_000,
  ) {}

  failed(subject: string, fields: Record<string, unknown>, message: string): void {
    const now = Date.now();
    const state = this.failing.get(subject);
    if (state && now - state.loggedAt < this.intervalMs) {
      state.suppressed++;
      return;
    }
    this.logger.warn({ ...fields, ...(state ? { suppressed: state.suppressed } : {}) }, message);
    this.failing.set(subject, { loggedAt: now, suppressed: 0 });
  }

  recovered(subject: string, fields: Record<string, unknown>, message: string): void {
    if (!this.failing.delete(subject)) return;
    this.logger.info(fields, message);
  }

  /** Forgets a subject that is no longer watched (its next failure is news again). */
  forget(subject: string): void {
    this.failing.delete(subject);
  }
}
