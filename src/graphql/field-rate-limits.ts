import type { FastifyBaseLogger } from 'fastify';
import { getGraphQLRateLimiter, InMemoryStore, RedisStore, type GraphQLRateLimitDirectiveArgs } from 'graphql-rate-limit';
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
import { z } from 'zod';
import type { GatewayContext } from '../context.js';
import { callerIdentity } from '../ratelimit/limiter.js';
import { filterOperation, type FieldCheck } from './field-guard.js';
import { argument, linkedDirectiveNames, literal } from './admission/supergraph-link.js';

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

/**
 * Field-level limits with graphql-rate-limit's limiter, applied by the admission stage before the
 * query plan runs: every occurrence of a limited field counts (aliased repeats included), per caller
 * (API key, user or IP), in the shared store when Redis is configured. An occurrence over its limit
 * is removed and answered `null` with a RATE_LIMITED error naming the field. If the store fails,
 * field limits are skipped (logged): request-level limits still protect the services.
 */
export class FieldRateLimiter {
  private readonly limiter: ReturnType<typeof getGraphQLRateLimiter>;

  constructor(
    redis: RedisClient | null,
    private readonly logger: FastifyBaseLogger,
  ) {
    this.limiter = getGraphQLRateLimiter({
      identifyContext: (context: GatewayContext) => callerIdentity(context.principal, context.clientIp),
      store: redis ? new RedisStore(redis) : new InMemoryStore(),
    });
  }

  /** Spends one token per occurrence; the check denying those over their limit, or null. */
  async spend(occurrences: readonly LimitedOccurrence[], variables: Record<string, unknown>, context: GatewayContext): Promise<FieldCheck | null> {
    let args: Record<string, unknown>[];
    try {
      args = occurrences.map(({ field, node }) => getArgumentValues(field, node, variables));
    } catch {
      return null; // bad or missing variables: Apollo reports them as the client's error
    }
    const denied = new Map<FieldNode, string>();
    try {
      for (const [i, { key, node, rule }] of occurrences.entries()) {
        const directiveArgs: GraphQLRateLimitDirectiveArgs = rule;
        // graphql-rate-limit keys its counters by `info.fieldName`; `Type.field` keeps types apart.
        const info = { fieldName: key } as GraphQLResolveInfo;
        const message = await this.limiter({ parent: undefined, args: args[i]!, context, info }, directiveArgs);
        if (message) denied.set(node, `${key}: ${message}`);
      }
    } catch (error) {
      this.logger.warn({ reason: (error as Error).message }, 'field rate limit store failed; field limits skipped for this request');
      return null;
    }
    if (denied.size === 0) return null;
    return (_parent, _field, node) => {
      const message = denied.get(node);
      return message ? { code: 'RATE_LIMITED', message } : null;
    };
  }
}
