import { z } from 'zod';

/** Event-stream settings, validated with the rest of the configuration (src/config/schema.ts). */
export const streamSchema = z.strictObject({
  /** The SSE endpoint, e.g. `/api/v1/alerts/stream`. */
  path: z.string().regex(/^(\/[A-Za-z0-9._~-]+)+$/),
  /** Redis stream key prefix: events live in `<channel>:tenant:<tenant_id>`. */
  channel: z.string().regex(/^[a-z0-9_-]+$/),
  auth: z.enum(['optional', 'authenticated']).default('authenticated'),
  roles: z.array(z.string()).default([]),
  permissions: z.array(z.string()).default([]),
  /** Roles allowed to publish through `POST <path without /stream>`. */
  publishRoles: z.array(z.string()).default(['admin', 'publisher']),
});
export type StreamConfig = z.output<typeof streamSchema>;

export const sseSchema = z.strictObject({
  historySize: z.coerce.number().int().positive().default(1_000),
  maxConnections: z.coerce.number().int().positive().default(10_000),
  maxConnectionsPerTenant: z.coerce.number().int().positive().default(1_000),
  /** Per user or API client (within a tenant; anonymous callers by IP), so one caller cannot take a tenant's slots. */
  maxConnectionsPerUser: z.coerce.number().int().positive().default(10),
  heartbeatSeconds: z.coerce.number().positive().default(15),
  retryMs: z.coerce.number().int().positive().default(3_000),
  /** A client further behind than this (bytes queued for it) is disconnected. */
  maxBufferedBytes: z.coerce.number().int().positive().default(1_048_576),
});
export type SseConfig = z.output<typeof sseSchema>;
