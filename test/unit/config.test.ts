import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, subgraphOverride } from '../../src/config/load.js';

const SUPERGRAPH_PATH = 'supergraph/supergraph.graphql';

describe('configuration', () => {
  it('has documented defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 4000,
      host: '0.0.0.0',
      supergraphPath: SUPERGRAPH_PATH,
      logLevel: 'info',
      nodeEnv: 'development',
      subgraphTimeoutMs: 10_000,
    });
    expect(config.redisUrl).toBeUndefined();
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('names the bad field and the variable it came from', () => {
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/port \(env PORT\)/);
    expect(() => loadConfig({ PORT: '70000' })).toThrow(/port \(env PORT\)/);
    expect(() => loadConfig({ LOG_LEVEL: 'loud' })).toThrow(/logLevel \(env LOG_LEVEL\)/);
    expect(() => loadConfig({ REDIS_URL: 'http://redis' })).toThrow(/redisUrl \(env REDIS_URL\)/);
    expect(() => loadConfig({ SUBGRAPH_ACCOUNTS_URL: 'not a url' })).toThrow(/subgraphs.ACCOUNTS.url \(env SUBGRAPH_ACCOUNTS_URL\)/);
    expect(() => loadConfig({ SUPERGRAPH_PATH: 'missing.graphql' })).toThrow(ConfigError);
  });

  it('reads a config file and lets environment variables override it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-config-'));
    const file = join(dir, 'gateway.yaml');
    writeFileSync(file, 'port: 5000\nlogLevel: debug\nsubgraphs:\n  accounts-v2:\n    url: http://accounts:4001/graphql\n    timeoutMs: 250\n');
    const config = loadConfig({ GATEWAY_CONFIG: file, LOG_LEVEL: 'warn' });
    expect(config.port).toBe(5000);
    expect(config.logLevel).toBe('warn');
    expect(subgraphOverride(config, 'accounts-v2')).toEqual({ url: 'http://accounts:4001/graphql', timeoutMs: 250 });

    const fromEnv = loadConfig({ GATEWAY_CONFIG: file, SUBGRAPH_ACCOUNTS_V2_TIMEOUT_MS: '900' });
    expect(subgraphOverride(fromEnv, 'accounts-v2').timeoutMs).toBe(900);
  });

  it('rejects unknown keys in the config file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-config-'));
    const file = join(dir, 'gateway.json');
    writeFileSync(file, JSON.stringify({ prot: 4000 }));
    expect(() => loadConfig({ GATEWAY_CONFIG: file })).toThrow(/prot/);
  });
});
