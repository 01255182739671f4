import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { accountsSubgraph } from '../../subgraphs/accounts/index.js';
import { TestIssuer } from './issuer.js';
import { RedisServer } from './redis-server.js';
import { startStack, type Stack, type StackOptions } from './stack.js';

export interface EventStreamStackOptions extends Omit<StackOptions, 'env'> {
  /** The in-process bus instead of the suite's Redis. */
  memoryBus?: boolean;
  /** The `sse` section of a gateway config file. */
  sse?: Record<string, unknown>;
  env?: Record<string, string>;
}

export interface EventStreamSuite {
  /** The file's own redis-server. */
  readonly server: RedisServer;
  /** A client of it, for publishing and reading what the gateway wrote. */
  readonly redis: Redis;
  /** A gateway (accounts subgraph, the suite's issuer) on that Redis unless told otherwise; closed after the file. */
  stack(options?: EventStreamStackOptions): Promise<Stack>;
}

/**
 * What the event-stream test files share: a token issuer, a redis-server of the file's own and a
 * client of it (started before the file's tests, stopped after them), and gateways built on those.
 */
export function eventStreamSuite(): EventStreamSuite {
  let issuer: TestIssuer;
  let server: RedisServer;
  let redis: Redis;
  const stacks: Stack[] = [];

  beforeAll(async () => {
    issuer = await TestIssuer.create();
    server = await RedisServer.start();
    redis = new Redis(server.url());
  });
  afterAll(async () => {
    await Promise.all(stacks.map((stack) => stack.close()));
    redis?.disconnect();
    await server?.stop();
  });

  return {
    get server() {
      return server;
    },
    get redis() {
      return redis;
    },
    async stack({ memoryBus = false, sse, env: extra = {}, ...rest } = {}) {
      const env: Record<string, string> = { ...extra };
      if (!memoryBus && !rest.redis && !env.REDIS_URL) env.REDIS_URL = server.url();
      if (sse) env.GATEWAY_CONFIG = writeConfig({ sse });
      const started = await startStack({ issuer, definitions: [accountsSubgraph()], env, ...rest });
      stacks.push(started);
      return started;
    },
  };
}

function writeConfig(config: Record<string, unknown>): string {
  const file = join(mkdtempSync(join(tmpdir(), 'gw-sse-')), 'gateway.json');
  writeFileSync(file, JSON.stringify(config));
  return file;
}
