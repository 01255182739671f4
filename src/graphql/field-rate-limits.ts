import type { FastifyBaseLogger } from 'fastify';
import { getGraphQLRateLimiter } from 'graphql-rate-limit';
import {
  getArgumentValues,
  parse,
  type DocumentNode,
  type FieldNode,
  type GraphQLField,
  type GraphQLResolveInfo,
  type GraphQLSchema,
  type OperationDefinitionNode,
} from 'graphql';
import type { RedisClient } from '../stores/redis.js';
import { RedisAvailability, RedisUnavailable } from '../stores/redis-availability.js';
import { ERRORS } from '../errors.js';
import { z } from 'zod';
import type { GatewayContext } from '../context.js';
import { callerIdentity } from '../ratelimit/limiter.js';
import { filterOperation, type Denial, type FieldCheck } from './field-guard.js';
import { argument, linkedDirectiveNames, literal } from './admission/supergraph-link.js';
import { AvailableRedisStore, BoundedMemoryStore } from './field-limit-stores.js';

export const fieldRateLimitSchema = z.strictObject({
  max: z.coerce.number().int().positive(),
  /** A duration such as `30s`, `1m`, `1h` (the `ms` package's format, as graphql-rate-limit reads it). */
  window: z.string().regex(/^\d+\s*(ms|s|m|h|d)$/),
  identityArgs: z.array(z.string()).optional(),
  message: z.string().optional(),
});
export type FieldRateLimit = z.output<typeof fieldRateLimitSchema>;

/** `Type.field` → its limit, from `@rateLimit` in the supergraph (exported with @composeDirective). */
export function rateLimitDirectives(supergraphSdl: string): Map<string, FieldRateLimit> {
  const document = parse(supergraphSdl);
  // Linked (imported, renamed, or namespaced `<as>__rateLimit`); without a link, as `@composeDirective` exports it.
  const name = linkedDirectiveNames(document, 'rate-limit', ['rateLimit'])?.rateLimit ?? 'rateLimit';
  const limits = new Map<string, FieldRateLimit>();
  for (const definition of document.definitions) {
    if (!('fields' in definition) || !definition.fields || !('name' in definition) || !definition.name) continue;
    for (const field of definition.fields) {
      const directive = field.directives?.find((d) => d.name.value === name);
      if (!directive) continue;
      const parsed = fieldRateLimitSchema.safeParse({
        max: literal(argument(directive, 'max')),
        window: literal(argument(directive, 'window')),
        identityArgs: literal(argument(directive, 'identityArgs')),
        message: literal(argument(directive, 'message')),
      });
      if (parsed.success) limits.set(`${definition.name.value}.${field.name.value}`, parsed.data);
    }
  }
  return limits;
}

/** One occurrence of a limited field in an operation (per document, so computed once and cached). */
export interface LimitedOccurrence {
  readonly key: string;
  readonly node: FieldNode;
  readonly field: GraphQLField<unknown, unknown>;
  readonly rule: FieldRateLimit;
}

/** Every occurrence of a limited field, fragments expanded (aliased repeats each count). */
export function limitedOccurrences(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  limits: ReadonlyMap<string, FieldRateLimit>,
): LimitedOccurrence[] {
  if (limits.size === 0) return [];
  const occurrences: LimitedOccurrence[] = [];
  filterOperation(schema, document, operation, (parent, field, node) => {
    const key = `${parent.name}.${field.name}`;
    const rule = limits.get(key);
    if (rule) occurrences.push({ key, node, field, rule });
    return null;
  });
  return occurrences;
}

export interface FieldRateLimiterOptions {
  /** The shared store; null keeps the counters in this process. */
  redis: RedisClient | null;
  /** The shared store's Redis: not asked while known unreachable, each call bounded. */
  availability?: RedisAvailability | null;
  /** RATE_LIMIT_ON_STORE_FAILURE, as for request limits: `open` counts locally, `closed` refuses. */
  onStoreFailure: 'open' | 'closed';
  /** Local counters admit this share of each limit while Redis is down (other instances admit too). */
  fallbackFactor: number;
  logger: FastifyBaseLogger;
}

/**
 * Field-level limits with graphql-rate-limit's limiter, applied by the admission stage before the
 * query plan runs: every occurrence of a limited field counts (aliased repeats included), per caller
 * (API key, user or IP), in the shared store when Redis is configured. An occurrence over its limit
 * is removed and answered `null` with a RATE_LIMITED error naming the field.
 *
 * The shared store's calls go through RedisAvailability, like request limits: a dead or hung Redis
 * costs one bounded wait, then none. While it is unreachable, `open` counts in this process with
 * each limit scaled by the fallback factor, `closed` removes the limited fields with
 * RATE_LIMIT_UNAVAILABLE. RedisAvailability logs the outage and the recovery, once each; a reply
 * error (WRONGTYPE on one counter's key) is no outage, so only that request falls back, with a warning.
 */
export class FieldRateLimiter {
  private readonly shared: ReturnType<typeof getGraphQLRateLimiter>;
  private readonly local: ReturnType<typeof getGraphQLRateLimiter> | null;
  private readonly availability: RedisAvailability | null;
  private readonly options: FieldRateLimiterOptions;

  constructor(options: FieldRateLimiterOptions) {
    this.options = options;
    this.availability = options.redis ? (options.availability ?? RedisAvailability.of(options.redis)) : null;
    this.availability?.declare('fieldRateLimits', options.onStoreFailure);
    const identifyContext = (context: GatewayContext) => callerIdentity(context.principal, context.clientIp);
    this.shared = getGraphQLRateLimiter({
      identifyContext,
      store: options.redis
        ? new AvailableRedisStore(options.redis, this.availability!, (redisKey, value) =>
            options.logger.warn({ key: redisKey, value: value.slice(0, 100) }, 'field rate limit counter in Redis was not a list of timestamps; counting it from empty'),
          )
        : new BoundedMemoryStore(),
    });
    this.local = options.redis && options.onStoreFailure === 'open' ? getGraphQLRateLimiter({ identifyContext, store: new BoundedMemoryStore() }) : null;
  }

  /** Spends one token per occurrence; the check denying those over their limit, or null. */
  async spend(occurrences: readonly LimitedOccurrence[], variables: Record<string, unknown>, context: GatewayContext): Promise<FieldCheck | null> {
    let args: Record<string, unknown>[];
    try {
      args = occurrences.map(({ field, node }) => getArgumentValues(field, node, variables));
    } catch {
      return null; // bad or missing variables: Apollo reports them as the client's error
    }
    const denied = new Map<FieldNode, Denial>();
    let shared = true;
    for (const [i, { key, node, rule }] of occurrences.entries()) {
      // graphql-rate-limit keys its counters by `info.fieldName`; `Type.field` keeps types apart.
      const call = { parent: undefined, args: args[i]!, context, info: { fieldName: key } as GraphQLResolveInfo };
      let message: string | undefined;
      if (shared) {
        try {
          message = await this.shared(call, rule);
        } catch (error) {
          this.sharedFailed(key, error as Error);
          this.availability?.fellBack('fieldRateLimits'); // once per request, as other features count
          shared = false;
        }
      }
      if (!shared) {
        if (!this.local) {
          denied.set(node, { code: 'RATE_LIMIT_UNAVAILABLE', message: `${key}: ${ERRORS.RATE_LIMIT_UNAVAILABLE.title}` });
          continue;
        }
        const scaled = { ...rule, max: Math.max(1, Math.floor(rule.max * this.options.fallbackFactor)) };
        message = await this.local(call, scaled);
      }
      if (message) denied.set(node, { code: 'RATE_LIMITED', message: `${key}: ${message}` });
    }
    if (denied.size === 0) return null;
    return (_parent, _field, node) => denied.get(node) ?? null;
  }

  /** An outage is RedisAvailability's to log; a reply error is this request's alone, so it is named here. */
  private sharedFailed(key: string, error: Error): void {
    const cause = (error instanceof RedisUnavailable ? error.cause : error) as Error | undefined;
    if (error instanceof RedisUnavailable && cause?.name !== 'ReplyError') return;
    this.options.logger.warn(
      { field: key, reason: cause?.message ?? error.message, mode: this.options.onStoreFailure },
      'field rate limit counter refused by Redis; this request falls back per RATE_LIMIT_ON_STORE_FAILURE',
    );
  }
}
