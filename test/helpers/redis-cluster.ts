import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Redis } from 'ioredis';
import { DEADLINE_MS } from './deadlines.js';
import { eventually } from './eventually.js';
import { freePort } from './ports.js';


/** A real three-master Redis Cluster on free ports (redis-server and redis-cli from Debian's package). */
export async function startRedisCluster(): Promise<{ nodes: string[]; stop(): Promise<void> }> {
  const dir = mkdtempSync(`${tmpdir()}/gw-cluster-`);
  const ports = [await freePort(), await freePort(), await freePort()];
  const processes: ChildProcess[] = ports.map((port) =>
    spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--save', '', '--appendonly', 'no', '--dir', dir],
      { stdio: 'ignore' },
    ),
  );
  await Promise.all(
    ports.map((port) =>
      eventually(async () => {
        const probe = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
        probe.on('error', () => {});
        try {
          await probe.connect();
          expect(await probe.ping());
        } finally {
          probe.disconnect();
        }
      }),
    ),
  );
  const created = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-yes'], { encoding: 'utf8' });
  if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
  // Every node must agree the cluster is up (slot ownership has propagated), not just the first.
  await eventually(async () => {
    for (const port of ports) {
      const probe = new Redis({ port, maxRetriesPerRequest: 0 });
      try {
        const info = String(await probe.call('CLUSTER', 'INFO'));
        if (!info.includes('cluster_state:ok') || !info.includes('cluster_slots_ok:16384') || !info.includes('cluster_known_nodes:3')) {
          throw new Error('cluster not ready');
        }
      } finally {
        probe.disconnect();
      }
    }
  }, DEADLINE_MS, 200);
  return {
    nodes: ports.map((port) => `127.0.0.1:${port}`),
    async stop() {
      for (const child of processes) child.kill('SIGKILL');
      await Promise.all(processes.map((child) => (child.exitCode === null ? once(child, 'exit') : undefined)));
    },
  };
}

function expect(value: unknown): void {
  if (!value) throw new Error('not ready');
}
