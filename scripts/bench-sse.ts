import { readFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { request, Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hs256Bearer } from '../test/helpers/hs256.js';
import { spawnGateway } from '../test/helpers/gateway-process.js';

/**
 * `npm run bench:sse`: N concurrent SSE clients (BENCH_SSE_CLIENTS, default 2000; try 10000 with a
 * raised `ulimit -n`) on one gateway process, its memory per connection, and publish-to-receive
 * latency (p50/p99) across all clients for BENCH_SSE_EVENTS events.
 */
const clients = Number(process.env.BENCH_SSE_CLIENTS ?? 2000);
const events = Number(process.env.BENCH_SSE_EVENTS ?? 20);
const secret = 'bench-secret-0123456789abcdef0123456789';
const config = join(mkdtempSync(join(tmpdir(), 'gw-sse-bench-')), 'gateway.json');
// Every client uses one token: lift the per-user cap as well as the per-tenant one.
writeFileSync(config, JSON.stringify({ sse: { maxConnections: clients + 10, maxConnectionsPerTenant: clients + 10, maxConnectionsPerUser: clients + 10 } }));

const gateway = await spawnGateway({
  SUPERGRAPH_PATH: 'supergraph/supergraph.graphql',
  JWT_SECRET: secret,
  JWT_ALGORITHMS: 'HS256',
  LOG_LEVEL: 'warn',
  NODE_ENV: 'production',
  RATE_LIMIT_ENABLED: 'false',
  GATEWAY_CONFIG: config,
});
const authorization = await hs256Bearer(secret, 'bench-user', { tenant_id: 'bench', roles: ['publisher'] });
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${gateway.child.pid}/status`, 'utf8'))![1]) * 1024;

const { hostname, port } = new URL(gateway.url);
const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
const latencies: number[] = [];
let connected = 0;
const rssBefore = rss();
await Promise.all(
  Array.from({ length: clients }, () =>
    new Promise<void>((resolve, reject) => {
      const req = request({ hostname, port, path: '/api/v1/alerts/stream', agent, headers: { authorization: authorization } }, (res) => {
        if (res.statusCode !== 200) return reject(new Error(`status ${res.statusCode}`));
        connected++;
        resolve();
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          let end: number;
          while ((end = buffer.indexOf('\n\n')) !== -1) {
            const frame = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = /^data: (.*)$/m.exec(frame)?.[1];
            if (data) latencies.push(Date.now() - (JSON.parse(data) as { sentAt: number }).sentAt);
          }
        });
      });
      req.on('error', reject);
      req.end();
    }),
  ),
);
await new Promise((resolve) => setTimeout(resolve, 500));
const rssConnected = rss();

for (let i = 0; i < events; i++) {
  await fetch(`${gateway.url}/api/v1/alerts`, {
    method: 'POST',
    headers: { authorization: authorization, 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'alert', data: { sentAt: Date.now(), i } }),
  });
  await new Promise((resolve) => setTimeout(resolve, 100));
}
const deadline = Date.now() + 10_000;
while (latencies.length < clients * events && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));

latencies.sort((a, b) => a - b);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
console.table([
  {
    clients: connected,
    'memory per connection (KiB)': Math.round((rssConnected - rssBefore) / connected / 1024),
    'events received': `${latencies.length} / ${clients * events}`,
    'latency p50 (ms)': pct(50),
    'latency p99 (ms)': pct(99),
  },
]);
gateway.child.kill('SIGTERM');
await gateway.exited;
process.exit(0);
