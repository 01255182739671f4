import type { FastifyBaseLogger } from 'fastify';
import { Cluster, type Redis } from 'ioredis';
import { REDIS_COMMAND_TIMEOUT_MS, type RedisClient } from './redis.js';
import { bounded, RedisCallTimeout } from './redis-availability.js';

type Logger = Pick<FastifyBaseLogger, 'info' | 'warn'>;

/** What a cache built on the tracking is told. */
export interface TrackingListener {
  /** `key` was written or deleted by anyone; `null`: every key may have changed (FLUSHALL, tracking just (re)started). */
  invalidated(key: string | null): void;
  /** Tracking stopped (connection lost, closed): invalidations may be missed until it is `active` again. */
  lost(): void;
}

const INVALIDATIONS = '__redis__:invalidate';

export interface TrackingOptions {
  /** How often the tracking connection is checked for answering (default 1 s). */
  heartbeatMs?: number;
  /** How long its PING may take before tracking counts as lost (default: the Redis command bound). */
  timeoutMs?: number;
}

/**
 * Redis server-assisted client-side caching (CLIENT TRACKING, Redis 6+) for the keys under one prefix.
 *
 * One dedicated connection both holds the tracking and receives the invalidations: it turns tracking
 * on redirected to its own id, then subscribes to `__redis__:invalidate` (ioredis speaks RESP2, where
 * invalidations only arrive as Pub/Sub messages on a redirect target). Because tracking and its
 * redirect target are the same connection, they are lost together and a redirect can never dangle:
 * the `tracking-redir-broken` case cannot occur (RESP2 would not report it anyway).
 *
 * BCAST mode rather than the default (per-key) mode: the reads stay on the shared connection, where
 * they are auto-pipelined with the rate-limit call, and the server keeps no table of the keys each
 * client read. The price is a message for every write under the prefix, also for tenants this
 * instance never saw; flag writes are operator and billing events, rare next to reads.
 *
 * Every (re)connection re-establishes tracking from scratch and announces `invalidated(null)`; any
 * loss announces `lost()`. A server that stops answering with the connection open (hung, or a
 * partition TCP has not noticed) would hold invalidations back unseen, and with every tenant answered
 * from memory no request would notice it either: a PING every `heartbeatMs`, unanswered within the
 * command bound, counts as a loss and reconnects. A Redis Cluster (tracking is per node) or a server that refuses CLIENT
 * TRACKING (older than 6, or an ACL without it) leaves tracking inactive for good, logged once.
 */
export class RedisKeyTracking {
  private isActive = false;
  private closed = false;
  /** Bumped on every connection change: a set-up that raced a reconnect must not mark tracking active. */
  private attempt = 0;
  private readonly listeners: TrackingListener[] = [];
  private readonly connection: Redis | null;
  private heartbeat: NodeJS.Timeout | null = null;
  private pinging = false;

  private constructor(
    redis: RedisClient,
    private readonly prefix: string,
    private readonly logger: Logger,
    private readonly options: TrackingOptions,
  ) {
    if (redis instanceof Cluster) {
      this.connection = null;
      this.unsupported('Redis Cluster (tracking is per node)');
      return;
    }
    // Set-up is ours on every `ready` (ioredis would re-subscribe without re-enabling tracking), and
    // nothing is queued while disconnected: it would be sent to a connection without tracking.
    this.connection = redis.duplicate({ autoResubscribe: false, enableOfflineQueue: false, lazyConnect: false });
    this.connection.on('error', () => {}); // outages are reported once by RedisAvailability
    this.connection.on('ready', this.onReady);
    this.connection.on('close', this.onLost);
    this.connection.on('messageBuffer', this.onMessage);
    this.heartbeat = setInterval(this.checkAlive, options.heartbeatMs ?? 1_000);
    this.heartbeat.unref();
  }

  /** Tracks the keys under `prefix`; check `active` before trusting a cache built on it. */
  static start(redis: RedisClient, prefix: string, logger: Logger, options: TrackingOptions = {}): RedisKeyTracking {
    return new RedisKeyTracking(redis, prefix, logger, options);
  }

  /** Every write under the prefix since the last `invalidated(null)` has been or will be announced. */
  get active(): boolean {
    return this.isActive;
  }

  listen(listener: TrackingListener): void {
    this.listeners.push(listener);
  }

  close(): void {
    this.closed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.onLost();
    this.connection?.disconnect();
  }

  private readonly onReady = async () => {
    const connection = this.connection!;
    const attempt = ++this.attempt;
    try {
      const id = await connection.client('ID');
      await connection.call('CLIENT', 'TRACKING', 'ON', 'REDIRECT', String(id), 'BCAST', 'PREFIX', this.prefix);
      await connection.subscribe(INVALIDATIONS);
    } catch (error) {
      // The server answered "no" (unknown subcommand, NOPERM): it never will. A dropped connection
      // instead comes back with another `ready`, and the set-up runs again.
      if ((error as Error).name === 'ReplyError') {
        this.unsupported((error as Error).message);
        this.close();
      }
      return;
    }
    if (attempt !== this.attempt || this.closed || connection.status !== 'ready') return;
    // Writes made while tracking was off were not announced: whatever was read before is suspect.
    for (const listener of this.listeners) listener.invalidated(null);
    this.isActive = true;
  };

  private readonly onLost = () => {
    this.attempt++;
    this.isActive = false;
    for (const listener of this.listeners) listener.lost();
  };

  /** An invalidation: the keys written, or `null` when the whole database was flushed. */
  private readonly onMessage = (channel: Buffer, keys: Buffer[] | Buffer | null) => {
    if (channel.toString() !== INVALIDATIONS) return;
    if (keys === null || !Array.isArray(keys)) {
      for (const listener of this.listeners) listener.invalidated(null);
      return;
    }
    for (const key of keys) {
      const name = key.toString();
      for (const listener of this.listeners) listener.invalidated(name);
    }
  };

  private readonly checkAlive = () => {
    const connection = this.connection;
    if (!connection || !this.isActive || this.pinging) return;
    this.pinging = true;
    bounded(connection.ping(), this.options.timeoutMs ?? REDIS_COMMAND_TIMEOUT_MS).then(
      () => {
        this.pinging = false;
      },
      (error: unknown) => {
        this.pinging = false;
        // A dropped connection: `close` has reported the loss already. Unanswered: tracking is lost.
        if (!(error instanceof RedisCallTimeout)) return;
        this.onLost();
        connection.disconnect(true); // ioredis reconnects; `ready` sets tracking up again
      },
    );
  };

  private unsupported(reason: string): void {
    this.logger.warn({ prefix: this.prefix, reason }, 'redis client-side caching unavailable; these keys are read from Redis on every request');
  }
}
