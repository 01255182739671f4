import { z } from 'zod';

/** A token bucket: `requests` tokens of burst, refilled evenly over `windowSeconds`. */
export const bucketSchema = z.strictObject({
  requests: z.coerce.number().int().positive(),
  windowSeconds: z.coerce.number().positive(),
});
export type BucketPolicy = z.output<typeof bucketSchema>;

export const rateLimitSchema = z.strictObject({
  enabled: z.stringbool().or(z.boolean()).default(true),
  /** The default bucket every caller has (the seeds' 300/minute; RATE_LIMIT_REQUESTS per RATE_LIMIT_WINDOW_SECONDS). */
  default: z
    .strictObject({
      requests: z.coerce.number().int().positive().default(300),
      windowSeconds: z.coerce.number().positive().default(60),
    })
    .default({ requests: 300, windowSeconds: 60 }),
  /** Quotas by caller class (the seeds' hourly numbers); a tier override replaces its class quota. */
  anonymous: bucketSchema.default({ requests: 100, windowSeconds: 3600 }),
  authenticated: bucketSchema.default({ requests: 1000, windowSeconds: 3600 }),
  apiKey: bucketSchema.default({ requests: 10_000, windowSeconds: 3600 }),
  tiers: z.record(z.string(), bucketSchema).default({}),
  /** Extra bucket for every caller of /graphql. */
  graphql: bucketSchema.optional(),
  /** Failed authentications per client IP before that IP is refused for a while (brute force). */
  authFailures: bucketSchema.default({ requests: 20, windowSeconds: 60 }),
  /** Shared ceiling for all callers of one tenant. */
  tenant: bucketSchema.optional(),
  /** What happens while Redis is unreachable: `open` = local buckets (scaled), `closed` = refuse. */
  onStoreFailure: z.enum(['open', 'closed']).default('open'),
  /** Local fallback buckets get this share of the configured capacity (other instances admit too). */
  fallbackFactor: z.coerce.number().gt(0).max(1).default(0.5),
});
export type RateLimitConfig = z.output<typeof rateLimitSchema>;

export const RATE_LIMIT_DEFAULTS: RateLimitConfig = rateLimitSchema.parse({});

/** One bucket to check for one caller: a stable name (headers, keys) and its policy. */
export interface BucketCheck {
  readonly name: string;
  readonly key: string;
  readonly policy: BucketPolicy;
}
