import type { TestProject } from 'vitest/node';
import { RedisServer } from '../helpers/redis-server.js';
import { ensurePrerequisites, MissingPrerequisite } from './prerequisites.js';

/**
 * Runs once before any test file: system prerequisites, then the suite's own redis-server on a free
 * port (tests reach it through `sharedRedisUrl`), stopped when the run ends.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  try {
    ensurePrerequisites();
  } catch (error) {
    if (!(error instanceof MissingPrerequisite)) throw error;
    // One line, no stack: this is an instruction to the person running the tests.
    process.stderr.write(`\n${error.message}\n\n`);
    process.exit(1);
  }
  const redis = await RedisServer.start();
  project.provide('redisPort', redis.port);
  return () => redis.stop();
}
