import { Cluster, Redis } from 'ioredis';

/** A single node (optionally found through Sentinel) or a Redis Cluster: the stores use either. */
export type RedisClient = Redis | Cluster;

/** No request waits longer than this on one Redis command. */
export const REDIS_COMMAND_TIMEOUT_MS = 500;

/**
 * The shared Redis connection. Commands are bounded (`commandTimeout`) so a dead Redis slows no
 * request beyond that, and reconnection is ioredis's job. The offline queue stays on: the event
 * reader's duplicate connection relies on it to wait out an outage quietly, and request paths never
 * reach it — RedisAvailability does not send commands while the client is disconnected, bounds each
 * call (a Cluster's offline queue has no timeout of its own), and logs outages once.
 */
export interface RedisTarget {
  url?: string | undefined;
  /** Cluster mode: `host:port` of some cluster nodes (the rest are discovered). */
  clusterNodes?: readonly string[];
  /** Sentinel mode: `host:port` of each sentinel and the monitored master's name. */
  sentinels?: readonly string[];
  sentinelName?: string | undefined;
}

/** The rate-limit script's command name (RedisRateLimitStore), which batches its calls itself. */
export const TOKEN_BUCKETS_COMMAND = 'tokenBuckets';
/** Commands that batch themselves. */
const AUTO_PIPELINING_IGNORED = [TOKEN_BUCKETS_COMMAND] as const;

export function createRedis(target: RedisTarget): RedisClient {
  const options = {
    // A backstop for callers that talk to Redis directly; request paths are bounded more tightly, and
    // stall-aware, by RedisAvailability. ioredis's own timer can fire after an event-loop stall before
    // the reply that already arrived is read, so it must not be the one that decides.
    commandTimeout: REDIS_COMMAND_TIMEOUT_MS * 4,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    enableAutoPipelining: true,
    // The rate-limit store batches its script calls itself (one per event-loop turn): pipelining
    // them again would only add a Pipeline object and a turn of delay per call.
    autoPipeliningIgnoredCommands: [...AUTO_PIPELINING_IGNORED],
    retryStrategy: (attempt: number) => Math.min(attempt * 200, 2_000),
  };
  const hostPort = (entry: string, defaultPort: string) => {
    const [host = '127.0.0.1', port = defaultPort] = entry.split(':');
    return { host, port: Number(port) };
  };
  const redis: RedisClient = target.clusterNodes?.length
    ? new Cluster(
        target.clusterNodes.map((entry) => hostPort(entry, '6379')),
        {
          enableAutoPipelining: true,
          autoPipeliningIgnoredCommands: [...AUTO_PIPELINING_IGNORED],
          clusterRetryStrategy: options.retryStrategy,
          redisOptions: { ...options, ...(target.url ? urlOptions(target.url) : {}) },
        },
      )
    : target.sentinels && target.sentinels.length > 0
      ? new Redis({
          ...options,
          sentinels: target.sentinels.map((entry) => hostPort(entry, '26379')),
          name: target.sentinelName ?? 'mymaster',
          // Credentials and database still come from REDIS_URL when both are given.
          ...(target.url ? urlOptions(target.url) : {}),
        })
      : new Redis(target.url!, options);
  // ioredis repeats connection errors on every reconnect attempt; RedisAvailability reports them once.
  redis.on('error', () => {});
  return redis;
}

function urlOptions(url: string): { password?: string; username?: string; db?: number } {
  const parsed = new URL(url);
  return {
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.pathname.length > 1 ? { db: Number(parsed.pathname.slice(1)) } : {}),
  };
}
