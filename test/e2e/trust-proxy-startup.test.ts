import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { configWarnings } from '../../src/config/warnings.js';
import { eventually } from '../helpers/eventually.js';
import { spawnGateway } from '../helpers/gateway-process.js';

/**
 * TRUST_PROXY=true believes X-Forwarded-For from any peer, so any client could pick the address its
 * per-IP rate limits and auth-failure blocking are keyed by: production refuses it at start-up,
 * elsewhere it starts with a warning. Listed proxies are the way to trust a proxy.
 */

describe('TRUST_PROXY=true', () => {
  it('is refused in production with an error naming TRUST_PROXY and what to set instead', () => {
    expect(() => loadConfig({ NODE_ENV: 'production', TRUST_PROXY: 'true' })).toThrow(
      /trustProxy \(env TRUST_PROXY\): true trusts X-Forwarded-For from every peer.*addresses or CIDRs \(e\.g\. 10\.0\.0\.0\/8\)/,
    );
    // The proxies' addresses are the production setting.
    const listed = loadConfig({ NODE_ENV: 'production', TRUST_PROXY: '10.0.0.0/8, loopback' });
    expect(listed.trustProxy).toEqual(['10.0.0.0/8', 'loopback']);
    expect(configWarnings(listed)).toEqual([]);
    // Elsewhere it is accepted, with a warning.
    const development = loadConfig({ TRUST_PROXY: 'true' });
    expect(development.trustProxy).toBe(true);
    expect(configWarnings(development)).toEqual([expect.stringMatching(/^TRUST_PROXY=true trusts .*refused when NODE_ENV=production$/)]);
  });

  it('a /0 range trusts every peer just the same: refused in production, a warning elsewhere', () => {
    for (const TRUST_PROXY of ['0.0.0.0/0,::/0', '10.0.0.0/8, ::/0', '0.0.0.0/0.0.0.0', '0.0.0.0/00']) {
      expect(() => loadConfig({ NODE_ENV: 'production', TRUST_PROXY }), TRUST_PROXY).toThrow(
        /trustProxy \(env TRUST_PROXY\): \S+ matches every address, so it trusts X-Forwarded-For from every peer/,
      );
      expect(configWarnings(loadConfig({ TRUST_PROXY })), TRUST_PROXY).toEqual([expect.stringMatching(/^TRUST_PROXY=\S+ matches every address.*refused when NODE_ENV=production$/)]);
    }
    // A narrow range is a proxy's address, not everyone's.
    expect(configWarnings(loadConfig({ NODE_ENV: 'production', TRUST_PROXY: '10.0.0.0/8,fd00::/8,192.168.0.0/255.255.0.0' }))).toEqual([]);
  });

  it('ranges that add up to every address of a family are refused just the same', () => {
    // Two halves of IPv4; IPv4 clients matched through their mapped form; the mapped block plus IPv4; half of IPv6 holding the mapped block.
    for (const TRUST_PROXY of ['0.0.0.0/1,128.0.0.0/1', '::ffff:0.0.0.0/96', '::ffff:0:0/97, 128.0.0.0/1', '::/1', '0.0.0.0/128.0.0.0,128.0.0.0/1,10.0.0.0/8']) {
      expect(() => loadConfig({ NODE_ENV: 'production', TRUST_PROXY }), TRUST_PROXY).toThrow(
        /trustProxy \(env TRUST_PROXY\): \S+ (together match every address of a family, so they|matches every address, so it) trust/,
      );
    }
    // Ranges with a gap between them leave the clients in the gap unable to choose their address.
    for (const TRUST_PROXY of ['0.0.0.0/1,128.0.0.0/2,192.0.0.0/3', '10.0.0.0/8,::ffff:10.0.0.0/104,fd00::/8', 'loopback,linklocal,uniquelocal']) {
      expect(configWarnings(loadConfig({ NODE_ENV: 'production', TRUST_PROXY })), TRUST_PROXY).toEqual([]);
    }
  });

  it('stops a production process at start-up with exit code 78 and the message on stderr', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', TRUST_PROXY: 'true', HOST: '127.0.0.1', PORT: '0' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const [code] = await once(child, 'exit');
    expect(code).toBe(78);
    expect(stderr).toMatch(/trustProxy \(env TRUST_PROXY\): true trusts X-Forwarded-For from every peer/);
  });

  it('starts a development process with a warning in its log', async () => {
    const gateway = await spawnGateway({ AUTH_GRAPHQL: 'optional', TRUST_PROXY: 'true' });
    try {
      // Log lines leave in batches (observability/log-destination.ts): the warning may follow readiness.
      await eventually(() =>
        expect(gateway.logs).toContainEqual(expect.objectContaining({ level: 40, msg: expect.stringMatching(/^TRUST_PROXY=true trusts X-Forwarded-For/) })),
      );
    } finally {
      gateway.child.kill('SIGTERM');
      await gateway.exited;
    }
  });
});
