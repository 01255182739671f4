import type { FastifyBaseLogger } from 'fastify';
import { request } from 'undici';
import type { ServiceConfig } from './config-schema.js';

export interface UpstreamInstance {
  readonly url: string;
  readonly weight: number;
  /** Requests in flight (for least-connections). */
  active: number;
  consecutiveFailures: number;
  /** Passive ejection: not picked before this time (0 = healthy). */
  ejectedUntil: number;
  /** Last active health check verdict. */
  activeHealthy: boolean;
  /** Smooth weighted round-robin state. */
  currentWeight: number;
}

/**
 * The instances of one service: picks one per attempt (round-robin, smooth weighted round-robin or
 * least-connections), skipping instances that failed their active health check or were ejected
 * after consecutive failures. undici's BalancedPool does not offer weights, least-connections or
 * health-aware selection, hence this small pool.
 */
export class UpstreamPool {
  readonly instances: UpstreamInstance[];
  private cursor = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    readonly name: string,
    private readonly config: ServiceConfig,
    private readonly logger: FastifyBaseLogger,
    private readonly now: () => number = Date.now,
  ) {
    this.instances = config.upstreams.map((upstream) => ({
      url: upstream.url.replace(/\/$/, ''),
      weight: upstream.weight,
      active: 0,
      consecutiveFailures: 0,
      ejectedUntil: 0,
      activeHealthy: true,
      currentWeight: 0,
    }));
  }

  isAvailable(instance: UpstreamInstance): boolean {
    return instance.activeHealthy && instance.ejectedUntil <= this.now();
  }

  /** Whether this instance still has a free connection (the gateway never queues behind a full pool). */
  hasCapacity(instance: UpstreamInstance): boolean {
    return instance.active < this.config.maxConnections;
  }

  /** Instances are available, but every one of them is using all its connections. */
  isSaturated(): boolean {
    const available = this.instances.filter((i) => this.isAvailable(i));
    return available.length > 0 && available.every((i) => !this.hasCapacity(i));
  }

  /**
   * An available instance with a free connection, not in `exclude`, or null when none is left.
   * Runs on every request: walks the instances in place, without a candidates array or Set per call.
   */
  pick(exclude: ReadonlySet<UpstreamInstance> | null = null): UpstreamInstance | null {
    const now = this.now();
    switch (this.config.loadBalancing) {
      case 'least-connections': {
        let best: UpstreamInstance | null = null;
        for (const instance of this.instances) if (this.eligible(instance, exclude, now) && (best === null || instance.active < best.active)) best = instance;
        return best;
      }
      case 'weighted': {
        // Smooth weighted round-robin (as in nginx): spreads heavy instances instead of bursting them.
        let total = 0;
        let best: UpstreamInstance | null = null;
        for (const instance of this.instances) {
          if (!this.eligible(instance, exclude, now)) continue;
          total += instance.weight;
          instance.currentWeight += instance.weight;
          if (best === null || instance.currentWeight > best.currentWeight) best = instance;
        }
        if (best) best.currentWeight -= total;
        return best;
      }
      default: {
        let count = 0;
        for (const instance of this.instances) if (this.eligible(instance, exclude, now)) count++;
        if (count === 0) return null;
        let nth = this.cursor++ % count;
        for (const instance of this.instances) if (this.eligible(instance, exclude, now) && nth-- === 0) return instance;
        return null;
      }
    }
  }

  private eligible(instance: UpstreamInstance, exclude: ReadonlySet<UpstreamInstance> | null, now: number): boolean {
    return instance.activeHealthy && instance.ejectedUntil <= now && instance.active < this.config.maxConnections && !exclude?.has(instance);
  }

  recordSuccess(instance: UpstreamInstance): void {
    instance.consecutiveFailures = 0;
    instance.ejectedUntil = 0;
  }

  /**
   * Passive health: eject after consecutive failures — but never the last available instance
   * (like Envoy's panic threshold): with nothing left, the circuit breaker is the better judge.
   */
  recordFailure(instance: UpstreamInstance): void {
    instance.consecutiveFailures++;
    const othersAvailable = this.instances.some((other) => other !== instance && this.isAvailable(other));
    if (
      othersAvailable &&
      instance.consecutiveFailures >= this.config.healthCheck.failureThreshold &&
      instance.ejectedUntil <= this.now()
    ) {
      instance.ejectedUntil = this.now() + this.config.healthCheck.ejectMs;
      this.logger.warn({ service: this.name, instance: instance.url }, 'upstream instance ejected after consecutive failures');
    }
  }

  /** Active checks: GET the health path on every instance, on an interval (unref'd: never keeps the process alive). */
  startHealthChecks(): void {
    const { path, intervalMs } = this.config.healthCheck;
    if (!path || this.timer) return;
    void this.checkAll();
    this.timer = setInterval(() => void this.checkAll(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  async checkAll(): Promise<void> {
    const { path, timeoutMs } = this.config.healthCheck;
    if (!path) return;
    await Promise.all(
      this.instances.map(async (instance) => {
        let healthy = false;
        try {
          const response = await request(`${instance.url}${path}`, { headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
          await response.body.dump();
          healthy = response.statusCode >= 200 && response.statusCode < 300;
        } catch {
          healthy = false;
        }
        if (healthy !== instance.activeHealthy) {
          this.logger.info({ service: this.name, instance: instance.url, healthy }, 'upstream health changed');
        }
        instance.activeHealthy = healthy;
        // A passing active check readmits an ejected instance at once.
        if (healthy) this.recordSuccess(instance);
      }),
    );
  }
}
