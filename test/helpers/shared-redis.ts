import { inject } from 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Port of the suite's own redis-server, started by test/setup/global.ts. */
    redisPort: number;
  }
}

/**
 * The suite's shared Redis (started once by the global setup), database `db`. Each test file uses
 * a database of its own so that files running in parallel never see each other's keys.
 */
export function sharedRedisUrl(db: number): string {
  return `redis://127.0.0.1:${inject('redisPort')}/${db}`;
}
