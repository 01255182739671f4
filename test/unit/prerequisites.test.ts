import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

describe('npm test on a machine without the system packages', () => {
  it('stops at once with one line naming the Debian packages, no stack trace', () => {
    // An empty PATH: no redis-server, no apt-get to install it with; and no Chromium where it looks.
    const emptyPath = mkdtempSync(join(tmpdir(), 'gw-no-path-'));
    const run = spawnSync(process.execPath, ['node_modules/vitest/vitest.mjs', 'run', 'test/unit/circuit-breaker.test.ts'], {
      env: { PATH: emptyPath, CHROMIUM_PATH: join(emptyPath, 'chromium'), HOME: process.env.HOME ?? emptyPath },
      encoding: 'utf8',
    });
    expect(run.status).toBe(1);
    const lines = run.stderr.split('\n').filter((line) => line.trim() !== '');
    expect(lines).toEqual([
      'The tests need the Debian packages redis-server and chromium: run `sudo apt-get install redis-server chromium` (or set CHROMIUM_PATH to a Chromium binary)',
    ]);
  });
});
