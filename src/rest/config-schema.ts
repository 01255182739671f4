import { z } from 'zod';
import { bucketSchema } from '../ratelimit/policy.js';

const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

const upstreamSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/ }),
  /** Share of traffic under `weighted` balancing. */
  weight: z.coerce.number().int().min(1).max(1000).default(1),
});

export const serviceSchema = z.strictObject({
  upstreams: z.array(upstreamSchema).min(1),
  loadBalancing: z.enum(['round-robin', 'weighted', 'least-connections']).default('round-robin'),
  /** Time allowed for the upstream's response headers, and between two body chunks. */
  timeoutMs: z.coerce.number().int().positive().default(30_000),
  /** Extra attempts on another instance, for idempotent requests that got no response. */
  retries: z.coerce.number().int().min(0).max(5).default(2),
  healthCheck: z
    .strictObject({
      /** Active checks: GET this path on every instance; unset = passive checks only. */
      path: z.string().startsWith('/').optional(),
      intervalMs: z.coerce.number().int().positive().default(10_000),
      timeoutMs: z.coerce.number().int().positive().default(2_000),
      /** Passive checks: eject an instance after this many consecutive failures… */
      failureThreshold: z.coerce.number().int().positive().default(3),
      /** …for this long (or until an active check sees it healthy again). */
      ejectMs: z.coerce.number().int().positive().default(30_000),
    })
    .default({ intervalMs: 10_000, timeoutMs: 2_000, failureThreshold: 3, ejectMs: 30_000 }),
  circuitBreaker: z
    .strictObject({
      /** Open after this many failures (errors, timeouts, 5xx) within `windowMs`. */
      failureThreshold: z.coerce.number().int().positive().default(5),
      windowMs: z.coerce.number().int().positive().default(10_000),
      /** Stay open this long, then let one probe through (half-open). */
      resetTimeoutMs: z.coerce.number().int().positive().default(30_000),
    })
    .default({ failureThreshold: 5, windowMs: 10_000, resetTimeoutMs: 30_000 }),
});

export const routeSchema = z.strictObject({
  /** Path prefix, e.g. `/api/v1/users`; matches the prefix itself and everything below it. */
  prefix: z
    .string()
    .regex(/^(\/[A-Za-z0-9._~-]+)+$/, 'must look like /api/v1/name (no trailing slash, no wildcards)'),
  service: z.string().min(1),
  auth: z.enum(['public', 'optional', 'authenticated']).default('authenticated'),
  roles: z.array(z.string()).default([]),
  permissions: z.array(z.string()).default([]),
  methods: z.array(z.enum(HTTP_METHODS)).default([...HTTP_METHODS]),
  /** Replaces `prefix` in the forwarded path (e.g. `/api/v1/users` → `/users`). */
  rewritePrefix: z.string().regex(/^(\/[A-Za-z0-9._~-]+)*$/, 'must be empty or look like /path (no trailing slash)').optional(),
  bodyLimitBytes: z.coerce.number().int().positive().optional(),
  /** An extra token bucket for each caller of this route. */
  rateLimit: bucketSchema.optional(),
  /** Also accept WebSocket upgrades on this prefix and proxy them both ways (auth runs at the upgrade). */
  websocket: z.boolean().default(false),
});

export type ServiceConfig = z.output<typeof serviceSchema>;
export type RouteConfig = z.output<typeof routeSchema>;

/** `USERS_SERVICE_URL`, `AI_INSIGHTS_SERVICE_URL`: the seeds' way of naming upstreams. */
export const SERVICE_URL_ENV_PATTERN = /^([A-Z0-9_]+)_SERVICE_URL$/;

/** `AI_INSIGHTS` → `ai-insights`: the service name, and the route `/api/v1/ai-insights`. */
export function serviceNameFromEnv(envPrefix: string): string {
  return envPrefix.toLowerCase().replace(/_/g, '-');
}
