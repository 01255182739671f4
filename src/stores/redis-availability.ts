import type { FastifyBaseLogger } from 'fastify';
import { Cluster } from 'ioredis';
import { Counter, Registry } from 'prom-client';
import { LastKnown } from './last-known.js';
import { REDIS_COMMAND_TIMEOUT_MS, type RedisClient } from './redis.js';

/**
 * What a feature does while Redis is unreachable, as `/health/ready` reports it. Only `closed`
 * fails readiness: the instance then refuses that feature's requests wholesale.
 */
export type RedisPolicy = 'open' | 'closed' | 'last-known' | 'miss';

export type RedisReadiness =
  | { status: 'connecting' }
  | { status: 'up' }
  | { status: 'down'; since: string; reason: string; policies: Record<string, RedisPolicy>; failsReadiness: boolean };

/** Redis could not be asked (down, hung, or never connected): the caller applies its policy. */
export class RedisUnavailable extends Error {
  override name = 'RedisUnavailable';
}

type Logger = Pick<FastifyBaseLogger, 'info' | 'error'>;

export interface RedisAvailabilityOptions {
  logger: Logger;
  /** The gateway's metrics registry (`gateway_redis_outages_total`, `gateway_redis_fallbacks_total`). */
  registry?: Registry;
  /** How long a value read from Redis may stand in for it during an outage (REDIS_LAST_KNOWN_SECONDS). */
  lastKnownSeconds: number;
  timeoutMs?: number;
  /** While connected but not answering, how often a PING checks whether it answers again. */
  probeIntervalMs?: number;
  now?: () => number;
}

/** Features built from a bare client (Apollo's APQ cache, trusted documents) find the gateway's tracker here. */
const attached = new WeakMap<RedisClient, RedisAvailability>();

/**
 * Whether Redis can be asked right now, for every feature that uses it. A disconnected client is
 * not asked at all (no request waits for a reconnect), a connected one is given at most the
 * command timeout (a hung server or a Cluster's offline queue would otherwise hold requests), and
 * a client that stopped answering is probed in the background until it answers again. An outage is
 * logged once, with each feature's policy, counted once, and so is the recovery.
 */
export class RedisAvailability {
  private down: { since: number; reason: string } | null = null;
  private connectedOnce: boolean;
  private probe: NodeJS.Timeout | null = null;
  /** A PING is checking whether a call that timed out means Redis stopped answering. */
  private checking = false;
  private readonly policies = new Map<string, RedisPolicy>();
  private readonly outages: Counter;
  private readonly fallbacks: Counter<'feature'>;
  private readonly logger: Logger;
  private readonly timeoutMs: number;
  private readonly probeIntervalMs: number;
  private readonly now: () => number;
  readonly lastKnownMs: number;

  private constructor(
    private readonly redis: RedisClient,
    options: RedisAvailabilityOptions,
  ) {
    this.logger = options.logger;
    this.timeoutMs = options.timeoutMs ?? REDIS_COMMAND_TIMEOUT_MS;
    this.probeIntervalMs = options.probeIntervalMs ?? 1_000;
    this.now = options.now ?? Date.now;
    this.lastKnownMs = options.lastKnownSeconds * 1000;
    const registers = [options.registry ?? new Registry()];
    this.outages = new Counter({ name: 'gateway_redis_outages_total', help: 'Times Redis became unreachable', registers });
    this.fallbacks = new Counter({
      name: 'gateway_redis_fallbacks_total',
      help: 'Requests a feature served without Redis, per its policy (last-known value, default, miss or refusal)',
      labelNames: ['feature'],
      registers,
    });
    this.connectedOnce = redis.status === 'ready';
    redis.on('ready', this.onReady);
    redis.on('reconnecting', this.onLost);
    redis.on('error', this.onError);
  }

  /** The gateway's tracker for this client (one per gateway; `detach` on close). */
  static attach(redis: RedisClient, options: RedisAvailabilityOptions): RedisAvailability {
    // A client shared by two gateways (tests, embedding): each keeps its own tracker listening.
    const availability = new RedisAvailability(redis, options);
    attached.set(redis, availability);
    return availability;
  }

  /** The tracker attached to this client, or a silent one for a client used outside a gateway. */
  static of(redis: RedisClient): RedisAvailability {
    return attached.get(redis) ?? RedisAvailability.attach(redis, { logger: SILENT, lastKnownSeconds: 300 });
  }

  detach(): void {
    this.redis.off('ready', this.onReady);
    this.redis.off('reconnecting', this.onLost);
    this.redis.off('error', this.onError);
    this.stopProbe();
    if (attached.get(this.redis) === this) attached.delete(this.redis);
  }

  /** Declares a feature's outage policy (for the outage log line and readiness). */
  declare(feature: string, policy: RedisPolicy): void {
    this.policies.set(feature, policy);
  }

  /** A cache of values read from Redis, standing in for REDIS_LAST_KNOWN_SECONDS during an outage. */
  lastKnown<V extends NonNullable<unknown>>(maxEntries: number): LastKnown<V> {
    return new LastKnown<V>(this.lastKnownMs, maxEntries, this.now);
  }

  /** Counts one request served without Redis by `feature`. */
  fellBack(feature: string): void {
    this.fallbacks.inc({ feature });
  }

  /**
   * Runs one Redis call, or throws RedisUnavailable without calling when Redis is known to be
   * unreachable. A reply error (WRONGTYPE on one key…) fails that call only: Redis did answer.
   */
  async run<T>(command: () => Promise<T>): Promise<T> {
    if (!this.usable()) throw new RedisUnavailable(this.down?.reason ?? `redis is ${this.redis.status}`);
    try {
      return await bounded(command(), this.timeoutMs);
    } catch (error) {
      const reason = (error as Error).message;
      if ((error as Error).name !== 'ReplyError') {
        // Connected: a late reply is a suspicion to check. Not connected: the client's events tell.
        if (this.redis.status === 'ready') this.suspect(reason);
        else this.lost(reason);
      }
      throw new RedisUnavailable(reason, { cause: error });
    }
  }

  readiness(): RedisReadiness {
    if (!this.connectedOnce) return { status: 'connecting' };
    if (this.usable()) return { status: 'up' };
    const policies = Object.fromEntries(this.policies);
    return {
      status: 'down',
      since: new Date(this.down?.since ?? this.now()).toISOString(),
      reason: this.down?.reason ?? `redis is ${this.redis.status}`,
      policies,
      failsReadiness: Object.values(policies).includes('closed'),
    };
  }

  /** Redis can be asked now (connected, and not known to have stopped answering). */
  usable(): boolean {
    // `wait`: a lazily connecting client connects on its first command.
    return (this.redis.status === 'ready' || this.redis.status === 'wait') && this.down === null;
  }

  private readonly onReady = () => {
    this.connectedOnce = true;
    this.recovered();
  };

  private readonly onLost = () => this.lost('connection lost; reconnecting');

  private readonly onError = (error: Error) => {
    // ioredis reports connection failures here (once per reconnect attempt); commands report their own.
    if (this.redis.status !== 'ready') this.lost(error.message);
  };

  /**
   * One call past its bound does not make an outage: in a burst (many event-stream opens on a loaded
   * machine) our own event loop can stall past every timer — ioredis's included, which has no grace —
   * while Redis answers everything. Redis is declared unavailable only if a PING sent after the
   * failure goes unanswered within the bound too, as it does when Redis is hung. Concurrent failures
   * share one check. Meanwhile each call is still bounded, so no request waits longer for it.
   */
  private suspect(reason: string): void {
    if (this.down || this.checking) return;
    this.checking = true;
    this.pingEveryNode().then(
      () => (this.checking = false),
      () => {
        this.checking = false;
        this.lost(reason);
      },
    );
  }

  private lost(reason: string): void {
    if (this.down) return;
    this.down = { since: this.now(), reason };
    this.outages.inc();
    this.logger.error(
      { reason, policies: Object.fromEntries(this.policies), lastKnownSeconds: this.lastKnownMs / 1000 },
      'redis unavailable; features degrade per their policies',
    );
    // Connected but not answering: nothing else would notice it answering again.
    if (this.redis.status === 'ready') this.startProbe();
  }

  private recovered(): void {
    this.stopProbe();
    if (!this.down) return;
    this.logger.info({ downForMs: this.now() - this.down.since }, 'redis available again');
    this.down = null;
  }

  private startProbe(): void {
    this.probe ??= setInterval(() => {
      if (this.redis.status !== 'ready') return; // the `ready` event will tell
      this.pingEveryNode().then(
        () => this.recovered(),
        () => {},
      );
    }, this.probeIntervalMs);
    this.probe.unref();
  }

  /**
   * A PING to every node a call may go to, within one bound. A Cluster's own PING goes to a node of
   * its choosing, which need not be the shard that hung: the check would clear a hung shard (and the
   * probe declare it recovered) whenever it picked a healthy one. So a Cluster's masters (where
   * commands go) are each asked; until the slot map is known, the Cluster's own PING stands in.
   */
  private pingEveryNode(): Promise<unknown> {
    const masters = this.redis instanceof Cluster ? this.redis.nodes('master') : [];
    const pings: Promise<unknown> = masters.length > 0 ? Promise.all(masters.map((node) => node.ping())) : this.redis.ping();
    return bounded(pings, this.timeoutMs);
  }

  private stopProbe(): void {
    if (this.probe) clearInterval(this.probe);
    this.probe = null;
  }
}

const SILENT: Logger = { info: () => {}, error: () => {} };

/** What `bounded` rejects with when the bound passed first (not an error Redis or the connection gave). */
export class RedisCallTimeout extends Error {
  constructor(ms: number) {
    super(`redis did not answer within ${ms} ms`);
  }
}

/**
 * The call's own promise, or a rejection once `ms` have passed (the losing promise is still handled).
 * The rejection waits one `setImmediate` past the timer: after an event-loop stall (a burst of
 * requests on a busy machine) the timer phase runs before the poll phase that would deliver a reply
 * already waiting in the socket, and a healthy Redis must not be declared down for our own stall.
 */
export function bounded<T>(call: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => setImmediate(() => reject(new RedisCallTimeout(ms))), ms);
  });
  return Promise.race([call, timeout]).finally(() => clearTimeout(timer));
}
