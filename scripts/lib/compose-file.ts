import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

/**
 * docker-compose.yml as the check script (`npm run check:docker`) and the deploy-files test read it:
 * only the parts they look at, and the two things both need to run its services outside Docker —
 * the path each health check probes, and the environment with compose host names made local.
 */
export interface ComposeHealthcheck {
  test: string[];
  interval?: string;
  timeout?: string;
  retries?: number;
  start_period?: string;
}

export interface ComposeService {
  build?: unknown;
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  secrets?: string[];
  healthcheck?: ComposeHealthcheck;
  depends_on?: Record<string, { condition: string }>;
}

export interface ComposeFile {
  services: Record<string, ComposeService>;
  secrets?: Record<string, { file: string }>;
}

export function readComposeFile(path = 'docker-compose.yml'): ComposeFile {
  // Compose resolves YAML merge keys (`<<: *subgraph`); so must we.
  return parse(readFileSync(path, 'utf8'), { merge: true }) as ComposeFile;
}

/** Compose mounts secret `<name>` at this path in the container. */
export const SECRETS_DIR = '/run/secrets/';

/**
 * The URL path an HTTP health check probes. Our checks are `["CMD", "node", "-e", <probe>, <path>]`:
 * the probe fetches `http://127.0.0.1:$PORT<path>` and exits 0 on a 2xx answer. Null for other checks
 * (Redis answers `redis-cli ping`).
 */
export function healthCheckPath(service: ComposeService): string | null {
  const test = service.healthcheck?.test;
  if (!test || test[0] !== 'CMD' || test[1] !== 'node' || test[2] !== '-e' || test.length !== 5) return null;
  return test[4]!.startsWith('/') ? test[4]! : null;
}

/** The health check as a command to spawn (without compose's leading `CMD`). */
export function healthCheckCommand(service: ComposeService): string[] {
  const test = service.healthcheck?.test ?? [];
  if (test[0] !== 'CMD') throw new Error(`unsupported health check form ${JSON.stringify(test)} (expected ["CMD", ...])`);
  return test.slice(1);
}

export interface LocalAddresses {
  /** Compose service name → `host:port` where it is reachable outside compose; unset keeps URLs as written. */
  services?: Record<string, string>;
  /** Compose secret name → a file holding it. */
  secrets: Record<string, string>;
}

/**
 * A service's compose environment for a process outside compose: URLs naming a compose service
 * point at its local address, `/run/secrets/<name>` at the secret's local file. URLs naming a
 * service that has no local address are dropped (e.g. REDIS_URL when no Redis is run), so the
 * process falls back to its default instead of waiting for a host that will never resolve.
 */
export function localEnvironment(compose: ComposeFile, service: ComposeService, local: LocalAddresses): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, raw] of Object.entries(service.environment ?? {})) {
    // An unquoted YAML number arrives as a number; the process would see its text.
    const value = String(raw);
    const secret = value.startsWith(SECRETS_DIR) ? value.slice(SECRETS_DIR.length) : null;
    if (secret !== null) {
      const file = local.secrets[secret];
      if (!file) throw new Error(`${name}: no local file for secret ${secret}`);
      env[name] = file;
      continue;
    }
    const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? new URL(value) : null;
    if (url && local.services && url.hostname in compose.services) {
      const address = local.services[url.hostname];
      if (!address) continue;
      // Only the authority changes: the rest stays as written (a trailing slash matters to a proxy).
      env[name] = value.replace(`//${url.host}`, `//${address}`);
      continue;
    }
    env[name] = value;
  }
  return env;
}
