import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { containsDevKey } from '../auth/dev-keys.js';
import { SERVICE_URL_ENV_PATTERN, serviceNameFromEnv } from '../rest/config-schema.js';
import {
  NESTED_ENV,
  CLAIM_ENV_PATTERN,
  CONFIG_FILE_ENV,
  ENV_KEYS,
  SUBGRAPH_ENV_FIELDS,
  SUBGRAPH_ENV_PATTERN,
  configSchema,
  subgraphEnvName,
  type GatewayConfig,
  type SubgraphOverride,
} from './schema.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Readonly<Record<string, string | undefined>>;
type RawConfig = Record<string, unknown> & {
  subgraphs?: Record<string, Record<string, unknown>>;
  claims?: Record<string, unknown>;
  services?: unknown;
  routes?: unknown;
};

/**
 * Reads the optional config file, lays environment variables over it, validates the result once and
 * freezes it. Every error names the field (and the variable it came from) so a bad deploy fails fast.
 */
export function loadConfig(env: Env = process.env): GatewayConfig {
  const raw: RawConfig = { ...readConfigFile(env[CONFIG_FILE_ENV]) };
  raw.subgraphs = normaliseSubgraphKeys(raw.subgraphs);

  for (const [envName, key] of Object.entries(ENV_KEYS)) {
    const value = env[envName];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  for (const [envName, value] of Object.entries(env)) {
    const match = SUBGRAPH_ENV_PATTERN.exec(envName);
    if (!match || value === undefined || value === '') continue;
    const [, subgraph, field] = match as unknown as [string, string, keyof typeof SUBGRAPH_ENV_FIELDS];
    const entry = (raw.subgraphs[subgraph] ??= {});
    entry[SUBGRAPH_ENV_FIELDS[field]] = value;
  }

  for (const [envName, value] of Object.entries(env)) {
    const match = CLAIM_ENV_PATTERN.exec(envName);
    if (!match || value === undefined || value === '') continue;
    const key = match[1]!.toLowerCase().replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase());
    raw.claims = { ...raw.claims, [key]: value };
  }

  addServicesFromEnv(raw, env);
  for (const [envName, path] of Object.entries(NESTED_ENV)) {
    const value = env[envName];
    if (value !== undefined && value !== '') setPath(raw, path, value);
  }

  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(formatIssues(parsed.error.issues));

  const config = parsed.data;
  checkAuthRules(config);
  if (!existsSync(config.supergraphPath)) {
    throw new ConfigError(
      `Invalid configuration: supergraphPath (env SUPERGRAPH_PATH): file not found: ${config.supergraphPath}`,
    );
  }
  return deepFreeze(config);
}

/** Overrides for one subgraph, whatever spelling of its name the config file or environment used. */
export function subgraphOverride(config: GatewayConfig, subgraphName: string): SubgraphOverride {
  return config.subgraphs[subgraphEnvName(subgraphName)] ?? {};
}

/** Sets `value` at `path` inside `target`, copying the objects on the way (file values stay untouched). */
function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  const [head, ...rest] = path as [string, ...string[]];
  if (rest.length === 0) {
    target[head] = value;
    return;
  }
  const child = { ...(target[head] as Record<string, unknown> | undefined) };
  target[head] = child;
  setPath(child, rest, value);
}

/**
 * `USERS_SERVICE_URL=http://users:8000[,http://users-2:8000]` sets the upstreams of service `users`
 * (overriding the config file's), and — unless a configured route already uses that service —
 * creates the route `/api/v1/users` with the defaults (authenticated).
 */
function addServicesFromEnv(raw: RawConfig, env: Env): void {
  const services = { ...(raw.services as Record<string, Record<string, unknown>> | undefined) };
  const routes = Array.isArray(raw.routes) ? [...(raw.routes as Record<string, unknown>[])] : [];
  for (const [envName, value] of Object.entries(env)) {
    const match = SERVICE_URL_ENV_PATTERN.exec(envName);
    if (!match || !value) continue;
    const name = serviceNameFromEnv(match[1]!);
    const upstreams = value.split(',').map((url) => ({ url: url.trim() }));
    services[name] = { ...services[name], upstreams };
    if (!routes.some((route) => route.service === name)) routes.push({ prefix: `/api/v1/${name}`, service: name });
  }
  raw.services = services;
  raw.routes = routes;
}

/** Rules across fields that a schema per field cannot express. */
function checkAuthRules(config: GatewayConfig): void {
  const hmacAllowed = config.jwtAlgorithms.some((alg) => alg.startsWith('HS'));
  if (config.jwtSecret && !hmacAllowed) {
    throw new ConfigError('Invalid configuration: jwtSecret (env JWT_SECRET) is set but JWT_ALGORITHMS allows no HS256/384/512');
  }
  if (hmacAllowed && !config.jwtSecret) {
    throw new ConfigError('Invalid configuration: jwtAlgorithms (env JWT_ALGORITHMS) allows HMAC but JWT_SECRET is not set');
  }
  const files: [string, string | undefined][] = [
    ['jwtPublicKeyFile (env JWT_PUBLIC_KEY_FILE)', config.jwtPublicKeyFile],
    ['gatewaySigningKeyFile (env GATEWAY_SIGNING_KEY_FILE)', config.gatewaySigningKeyFile],
  ];
  const keyTexts = [config.jwtPublicKey, config.gatewaySigningKey];
  for (const [field, path] of files) {
    if (!path) continue;
    try {
      keyTexts.push(readFileSync(path, 'utf8'));
    } catch {
      throw new ConfigError(`Invalid configuration: ${field}: cannot read ${path}`);
    }
  }
  if (config.nodeEnv === 'production' && keyTexts.some(containsDevKey)) {
    throw new ConfigError('Invalid configuration: development keys (from `npm start`) are refused when NODE_ENV=production');
  }
}

function readConfigFile(path: string | undefined): Record<string, unknown> {
  if (!path) return {};
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`${CONFIG_FILE_ENV}: cannot read ${path}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (error) {
    throw new ConfigError(`${CONFIG_FILE_ENV}: ${path} is not valid YAML/JSON: ${(error as Error).message}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(`${CONFIG_FILE_ENV}: ${path} must contain a mapping of settings`);
  }
  return parsed as Record<string, unknown>;
}

function normaliseSubgraphKeys(subgraphs: unknown): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  if (subgraphs && typeof subgraphs === 'object' && !Array.isArray(subgraphs)) {
    for (const [name, value] of Object.entries(subgraphs)) {
      out[subgraphEnvName(name)] = value as Record<string, unknown>;
    }
  }
  return out;
}

const ENV_BY_KEY = new Map<string, string>(Object.entries(ENV_KEYS).map(([env, key]) => [key, env]));

function formatIssues(issues: readonly z.core.$ZodIssue[]): string {
  const lines = issues.map((issue) => {
    const path = issue.path.map(String);
    let source = '';
    if (path.length >= 1 && ENV_BY_KEY.has(path[0]!)) source = ` (env ${ENV_BY_KEY.get(path[0]!)})`;
    if (path[0] === 'claims' && path.length === 2) {
      source = ` (env JWT_CLAIM_${path[1]!.replace(/([A-Z])/g, '_$1').toUpperCase()})`;
    }
    const nested = Object.entries(NESTED_ENV).find(([, p]) => p.join('.') === path.join('.'));
    if (nested) source = ` (env ${nested[0]})`;
    if (path[0] === 'services' && path[2] === 'upstreams') {
      source = ` (env ${path[1]!.toUpperCase().replace(/-/g, '_')}_SERVICE_URL or the config file)`;
    }
    if (path[0] === 'subgraphs' && path.length === 3) {
      const suffix = Object.entries(SUBGRAPH_ENV_FIELDS).find(([, key]) => key === path[2])?.[0];
      if (suffix) source = ` (env SUBGRAPH_${path[1]}_${suffix})`;
    }
    return `  - ${path.join('.') || '(root)'}${source}: ${issue.message}`;
  });
  return `Invalid configuration:\n${lines.join('\n')}`;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
