/**
 * How long a test waits for a condition before calling it failed. One constant for the whole suite:
 * on a loaded 2-core machine (CI, or a second copy of the suite beside this one) processes start and
 * answer several times slower than on an idle laptop, and a deadline is only a ceiling, never a delay.
 * `TEST_DEADLINE_MS` raises it on slower machines still.
 */
export const DEADLINE_MS = Number(process.env.TEST_DEADLINE_MS ?? 60_000);

/** How often a waiting test re-checks its condition. */
export const POLL_MS = 50;
