import { appendFileSync } from 'node:fs';
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';
import { join } from 'node:path';

/**
 * Preloaded (`--expose-gc --import`) into the processes `npm run bench:sse` measures: on SIGUSR2 a
 * full GC, so resident memory is read after garbage is gone, then `process.memoryUsage()` appended
 * as a JSON line to BENCH_MEMORY_FILE (where the resident bytes are: V8 heap used and committed,
 * memory outside it), and a heap snapshot when BENCH_HEAP_SNAPSHOT_DIR is set. Node has no built-in
 * signal for a GC alone.
 */
const gc = (globalThis as { gc?: () => void }).gc;
let snapshots = 0;
process.on('SIGUSR2', () => {
  gc?.();
  gc?.();
  if (process.env.BENCH_MEMORY_FILE) {
    const spaces = Object.fromEntries(getHeapSpaceStatistics().map((space) => [space.space_name, { committed: space.space_size, used: space.space_used_size }]));
    appendFileSync(process.env.BENCH_MEMORY_FILE, `${JSON.stringify({ ...process.memoryUsage(), spaces })}\n`);
  }
  const dir = process.env.BENCH_HEAP_SNAPSHOT_DIR;
  if (dir && snapshots++ < 2) writeHeapSnapshot(join(dir, `sse-${process.pid}-${snapshots}.heapsnapshot`));
});
