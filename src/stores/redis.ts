import { Redis } from 'ioredis';

/**
 * The shared Redis connection. Commands are bounded (`commandTimeout`) so a dead Redis slows no
 * request beyond that, and reconnection is ioredis's job.
 */
export function createRedis(url: string): Redis {
  return new Redis(url, {
    commandTimeout: 500,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    enableAutoPipelining: true,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  });
}
