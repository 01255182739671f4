import { DEADLINE_MS, POLL_MS } from './deadlines.js';

/** Retries an assertion until it passes or the deadline expires: the suite's only way to wait for a condition. */
export async function eventually<T>(assertion: () => Promise<T> | T, timeoutMs = DEADLINE_MS, intervalMs = POLL_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await assertion();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }
}
