import type { FastifyBaseLogger } from 'fastify';
import { Redis } from 'ioredis';

/**
 * The shared Redis connection. Commands are bounded (`commandTimeout`) so a dead Redis slows no
 * request beyond that, and reconnection is ioredis's job. Connection errors are logged once per
 * outage (ioredis repeats them on every reconnect attempt), and recovery once.
 */
export function createRedis(url: string, logger: FastifyBaseLogger): Redis {
  const redis = new Redis(url, {
    commandTimeout: 500,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    enableAutoPipelining: true,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  });
  let failing = false;
  redis.on('error', (error: Error) => {
    if (failing) return;
    failing = true;
    logger.error({ reason: error.message }, 'redis connection failed; retrying');
  });
  redis.on('ready', () => {
    if (!failing) return;
    failing = false;
    logger.info('redis connection restored');
  });
  return redis;
}
