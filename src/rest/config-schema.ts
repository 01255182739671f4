import { isIP } from 'node:net';
import { z } from 'zod';
import { bucketSchema } from '../ratelimit/policy.js';

const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

const upstreamSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/ }),
  /** Share of traffic under `weighted` balancing. */
  weight: z.coerce.number().int().min(1).max(1000).default(1),
});

export const serviceSchema = z
  .strictObject({
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
    /**
     * Connections to each instance (undici's pool size). Requests are never queued behind it: when
     * every available instance holds this many, the gateway answers 503 UPSTREAM_BUSY at once.
     */
    maxConnections: z.coerce.number().int().positive().max(10_000).default(128),
    /** Requests of one caller (API key, user, else client IP) in flight to this service → 429 above. */
    maxConnectionsPerCaller: z.coerce.number().int().positive().default(32),
    /** Requests of one tenant in flight to this service → 429 above; leaves connections to the others. */
    maxConnectionsPerTenant: z.coerce.number().int().positive().default(64),
  })
  .superRefine((service, context) => {
    const total = service.maxConnections * service.upstreams.length;
    if (service.maxConnectionsPerTenant >= total) {
      context.addIssue({
        code: 'custom',
        path: ['maxConnectionsPerTenant'],
        message: `must be below maxConnections × instances (${total}), so that one tenant cannot hold every connection`,
      });
    }
    if (service.maxConnectionsPerCaller > service.maxConnectionsPerTenant) {
      context.addIssue({ code: 'custom', path: ['maxConnectionsPerCaller'], message: 'must not exceed maxConnectionsPerTenant' });
    }
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

/** proxy-addr's named ranges, which Fastify's `trustProxy` accepts beside addresses and CIDRs. */
const TRUST_PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * `TRUST_PROXY`, parsed once, into exactly what Fastify's `trustProxy` takes — and what
 * `request.ip` / `request.ips` then follow, the REST proxy's X-Forwarded-For included:
 * unset or `false` (trust nobody), `true` (every peer), or a list of proxy addresses, CIDRs
 * (`10.0.0.0/8`, `fd00::/8`) and the names `loopback`, `linklocal`, `uniquelocal`.
 *
 * Hop counts are refused: Fastify 5 no longer honours them (a count cannot tell a proxy from a
 * client that connects directly), so one would silently trust nobody while looking configured.
 */
export const trustProxySchema = z
  .union([z.boolean(), z.number(), z.string(), z.array(z.string())])
  .transform((value, context): boolean | string[] => {
    if (typeof value === 'boolean') return value;
    // A number in the config file is a hop count too: accepted here only to be explained below.
    if (typeof value === 'number') value = String(value);
    if (typeof value === 'string') {
      const trimmed = value.trim();
      if (trimmed === '' || trimmed === 'false') return false;
      if (trimmed === 'true') return true;
      value = trimmed.split(',');
    }
    const entries = value.map((entry) => entry.trim()).filter((entry) => entry !== '');
    for (const entry of entries) {
      const problem = trustEntryProblem(entry);
      if (problem) context.addIssue({ code: 'custom', message: `"${entry}": ${problem}` });
    }
    return entries.length === 0 ? false : entries;
  });

function trustEntryProblem(entry: string): string | null {
  if (/^\d+$/.test(entry)) {
    return 'hop counts are not supported (they cannot tell a proxy from a direct client); list the proxies\' addresses or CIDRs';
  }
  if (TRUST_PROXY_NAMES.has(entry) || isIP(entry) !== 0) return null;
  const slash = entry.indexOf('/');
  if (slash !== -1) {
    const address = entry.slice(0, slash);
    const range = entry.slice(slash + 1);
    const family = isIP(address);
    const bits = family === 4 ? 32 : 128;
    if (family !== 0 && /^\d{1,3}$/.test(range) && Number(range) <= bits) return null;
    // proxy-addr also takes a contiguous IPv4 netmask: 10.0.0.0/255.0.0.0.
    if (family === 4 && isIP(range) === 4 && /^1*0*$/.test(ipv4Bits(range))) return null;
  }
  return 'expected true, false, or a comma list of IP addresses, CIDRs, loopback, linklocal, uniquelocal';
}

function ipv4Bits(address: string): string {
  return address
    .split('.')
    .map((octet) => Number(octet).toString(2).padStart(8, '0'))
    .join('');
}
