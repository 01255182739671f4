import { spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { LogDestination } from '../../src/observability/log-destination.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gw-log-'));
  dirs.push(dir);
  return join(dir, 'out.log');
}

describe('the gateway log destination', () => {
  it('hands pino’s asynchronous destination one string per batch, not one per line, and loses none', () => {
    const file = tempFile();
    // An open descriptor, as the gateway's stdout is: a path would open asynchronously.
    const output = pino.destination({ dest: openSync(file, 'w'), sync: false, minLength: 4096 });
    const handedOver: number[] = [];
    const write = output.write.bind(output);
    output.write = (data: string) => {
      handedOver.push(data.length);
      return write(data);
    };
    const destination = new LogDestination(output);
    const log = pino({ level: 'info' }, destination);
    for (let i = 0; i < 200; i++) log.info({ reqId: `r-${i}`, path: `/api/v1/users/${i}` }, 'request completed');
    destination.flushSync();
    destination.close();

    // ~100-byte lines in batches of at least 4 KB: a handful of writes, not 200.
    expect(handedOver.length).toBeLessThanOrEqual(10);
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { reqId: string });
    expect(lines.map((line) => line.reqId)).toEqual(Array.from({ length: 200 }, (_, i) => `r-${i}`));
  });

  it('writes out what it holds when the process exits right after logging', () => {
    const file = tempFile();
    const script = `
      import { openSync } from 'node:fs';
      import { pino } from 'pino';
      import { LogDestination } from './src/observability/log-destination.ts';
      const output = pino.destination({ dest: openSync(${JSON.stringify(file)}, 'w'), sync: false, minLength: 4096 });
      const log = pino({ level: 'info' }, new LogDestination(output));
      for (let i = 0; i < 3; i++) log.info({ n: i }, 'before exit');
      process.exit(0);
    `;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', script], { encoding: 'utf8' });
    expect(child.status, child.stderr).toBe(0);
    expect(readFileSync(file, 'utf8').trim().split('\n').map((line) => (JSON.parse(line) as { n: number }).n)).toEqual([0, 1, 2]);
  });
});
