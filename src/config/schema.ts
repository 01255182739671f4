import { z } from 'zod';

/** Per-subgraph overrides: where to reach it and how long to wait for it. */
const subgraphOverrideSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/ }).optional(),
  timeoutMs: z.coerce.number().int().positive().optional(),
});

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const configSchema = z.strictObject({
  port: z.coerce.number().int().min(0).max(65535).default(4000),
  host: z.string().min(1).default('0.0.0.0'),
  nodeEnv: z.enum(['development', 'production', 'test']).default('development'),
  logLevel: z.enum(logLevels).default('info'),
  supergraphPath: z.string().min(1).default('supergraph/supergraph.graphql'),
  /** Watch the supergraph file and hot-reload it when it changes. */
  supergraphWatch: z.stringbool().or(z.boolean()).default(true),
  /** Unset = every piece of shared state lives in memory (one instance). */
  redisUrl: z.url({ protocol: /^rediss?$/ }).optional(),
  /** Tenant given to callers that carry none (single-tenant deployments, the demo). */
  defaultTenantId: z.string().min(1).max(128).optional(),
  subgraphTimeoutMs: z.coerce.number().int().positive().default(10_000),
  shutdownTimeoutMs: z.coerce.number().int().positive().default(10_000),
  bodyLimitBytes: z.coerce.number().int().positive().default(1_048_576),
  subgraphs: z.record(z.string().regex(/^[A-Za-z0-9_-]+$/), subgraphOverrideSchema).default({}),
});

export type GatewayConfig = Readonly<z.output<typeof configSchema>>;
export type SubgraphOverride = z.output<typeof subgraphOverrideSchema>;

/** Environment variable → config key. This table is the public contract documented in the README. */
export const ENV_KEYS = {
  PORT: 'port',
  HOST: 'host',
  NODE_ENV: 'nodeEnv',
  LOG_LEVEL: 'logLevel',
  SUPERGRAPH_PATH: 'supergraphPath',
  SUPERGRAPH_WATCH: 'supergraphWatch',
  REDIS_URL: 'redisUrl',
  DEFAULT_TENANT_ID: 'defaultTenantId',
  SUBGRAPH_TIMEOUT_MS: 'subgraphTimeoutMs',
  SHUTDOWN_TIMEOUT_MS: 'shutdownTimeoutMs',
  BODY_LIMIT_BYTES: 'bodyLimitBytes',
} as const satisfies Record<string, keyof z.input<typeof configSchema>>;

/** `SUBGRAPH_<NAME>_URL` / `SUBGRAPH_<NAME>_TIMEOUT_MS`: per-subgraph overrides from the environment. */
export const SUBGRAPH_ENV_PATTERN = /^SUBGRAPH_([A-Z0-9_]+)_(URL|TIMEOUT_MS)$/;

/** The file named by this variable (YAML or JSON) is read first; environment variables override it. */
export const CONFIG_FILE_ENV = 'GATEWAY_CONFIG';

/** `accounts-v2` → `ACCOUNTS_V2`: how a subgraph name appears in environment variable names. */
export function subgraphEnvName(subgraphName: string): string {
  return subgraphName.toUpperCase().replace(/-/g, '_');
}

export function isKnownEnvName(name: string): boolean {
  return name === CONFIG_FILE_ENV || name in ENV_KEYS || SUBGRAPH_ENV_PATTERN.test(name);
}
