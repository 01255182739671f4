import type { ChildProcess } from 'node:child_process';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { hs256Bearer } from '../test/helpers/hs256.js';
import { baseEnv, cpuMicros, cpuProfArgs, freePort, hasTaskset, pinProcess, productionGatewayArgs, productionGatewayEnv, spawnPinned, stop, waitReady } from './lib/bench-procs.js';
import { SseClients } from './lib/sse-clients.js';

/**
 * `npm run bench:sse`: BENCH_SSE_CLIENTS (10000) event streams of one tenant on one process, then
 * BENCH_SSE_EVENTS (10) events BENCH_SSE_INTERVAL_MS (500) apart, each fanned out to every stream.
 * Rows, in one run: a bare `node:http` server (open responses in a Set, fed by XREAD), the gateway
 * as production runs it on the Redis bus (events by XADD) and on the in-memory bus (events through
 * `POST /api/v1/alerts`). Per row: publish→receive p50/p99 over every delivery, resident memory per
 * connection (RSS after a full GC with the streams open, minus before, over the streams), events
 * delivered / expected, and the server's CPU time per delivery. With `taskset`, the server runs alone
 * on CPU 1 and the clients (this process) on CPU 0. Opens refused with 503/429/408 are retried (as EventSource would) and counted. BENCH_SSE_ROWS picks rows
 * (bare,redis,memory); BENCH_CPU_PROF=<dir> / BENCH_HEAP_SNAPSHOT_DIR=<dir> profile the gateway
 * (heap snapshots of the bare server too).
 * BENCH_COMPARE_DIR=<another checkout, with node_modules> adds each gateway row run from there
 * before this checkout's (A/B in one run). BENCH_SSE_NODE_FLAGS='--flag …' adds Node flags to every
 * gateway row; each runs as production does (built `dist/`, the Dockerfile's Node flags).
 */
const clients = Number(process.env.BENCH_SSE_CLIENTS ?? 10_000);
const events = Number(process.env.BENCH_SSE_EVENTS ?? 10);
const intervalMs = Number(process.env.BENCH_SSE_INTERVAL_MS ?? 500);
const compareDir = process.env.BENCH_COMPARE_DIR;
const rows = (process.env.BENCH_SSE_ROWS ?? (compareDir ? 'bare,redis-compare,redis,memory-compare,memory' : 'bare,redis,memory')).split(',');
const LOAD_CPU = 0;
const SUT_CPU = 1;
const TENANT = 'bench';
const STREAM_KEY = `alerts:tenant:${TENANT}`;
const WARMUP = Math.min(200, Math.ceil(clients / 10));
const secret = 'bench-secret-0123456789abcdef0123456789';
const work = mkdtempSync(join(tmpdir(), 'gw-bench-sse-'));
const children: ChildProcess[] = [];
// Heap snapshots of every server, the bare one included: per-stream bytes are compared class by class.
const heapSnapshotEnv = process.env.BENCH_HEAP_SNAPSHOT_DIR ? { BENCH_HEAP_SNAPSHOT_DIR: process.env.BENCH_HEAP_SNAPSHOT_DIR } : {};
const preload = ['--expose-gc', '--import', 'tsx', '--import', fileURLToPath(new URL('./lib/bench-gc-signal.ts', import.meta.url))];

// Every stream is a socket in this process and in the server: both need that many descriptors.
// Node raises its soft limit to the hard one at start-up, and children inherit it.
const hardLimit = execFileSync('sh', ['-c', 'ulimit -Hn']).toString().trim();
if (hardLimit !== 'unlimited' && Number(hardLimit) < clients + 1_000) {
  console.error(`bench:sse needs ${clients + 1_000} file descriptors per process, the hard limit is ${hardLimit}: raise it (ulimit -Hn, limits.conf, or docker --ulimit nofile=…) or lower BENCH_SSE_CLIENTS.`);
  process.exit(1);
}
pinProcess(process.pid, LOAD_CPU);

interface Server {
  port: number;
  child: ChildProcess;
  /** Publishes event `i`, stamped with the time it is sent. */
  publish(i: number): Promise<void>;
  /** Where the server appends `process.memoryUsage()` after each forced GC (bench-gc-signal.ts). */
  memoryFile: string;
}

async function startRedis(): Promise<{ url: string; client: Redis }> {
  const port = await freePort();
  // Not pinned: on a busy 2-core machine, sharing CPU 0 with the clients can starve it past the
  // gateway's Redis deadline (500 ms), which then reports Redis unavailable.
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { env: baseEnv, stdio: 'ignore' });
  children.push(child);
  const url = `redis://127.0.0.1:${port}/0`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => {});
    const ok = await probe.connect().then(() => probe.ping(), () => null);
    if (ok === 'PONG') return { url, client: probe };
    probe.disconnect();
    if (Date.now() > deadline) throw new Error('redis-server did not start');
    await sleep(100);
  }
}

const eventData = (i: number) => JSON.stringify({ sentAt: Date.now(), i });
const xadd = (redis: Redis) => async (i: number) => {
  await redis.xadd(STREAM_KEY, 'MAXLEN', '~', '1000', '*', 'type', 'alert', 'data', eventData(i));
};

async function startBare(redisUrl: string, redis: Redis): Promise<Server> {
  const port = await freePort();
  const memoryFile = join(work, 'bare.mem');
  const env = { ...baseEnv, NODE_ENV: 'production', PORT: String(port), REDIS_URL: redisUrl, STREAM_KEY, BENCH_MEMORY_FILE: memoryFile, ...heapSnapshotEnv };
  const child = spawnPinned(SUT_CPU, process.execPath, [...preload, 'scripts/lib/bench-sse-bare.ts'], env, 'inherit');
  children.push(child);
  await waitReady(`http://127.0.0.1:${port}/health`, child, () => 'bare server');
  return { port, child, publish: xadd(redis), memoryFile };
}

async function startGateway(name: string, authorization: string, extra: Record<string, string>, publish: 'xadd' | 'route', redis: Redis, cwd?: string): Promise<Server> {
  const port = await freePort();
  const config = join(work, `${name}.json`);
  // One caller holds every stream: its tenant and per-user caps are lifted with the instance's.
  const cap = clients + WARMUP + 10;
  // Rate limits stay on (every connection attempt is checked), with quotas no run can reach.
  const generous = { requests: 1_000_000_000, windowSeconds: 60 };
  writeFileSync(
    config,
    JSON.stringify({
      sse: { maxConnections: cap, maxConnectionsPerTenant: cap, maxConnectionsPerUser: cap },
      rateLimits: { enabled: true, default: generous, authenticated: generous },
    }),
  );
  const logFile = join(work, `${name}.log`);
  const memoryFile = join(work, `${name}.mem`);
  const args = productionGatewayArgs(cwd, [...(process.env.BENCH_SSE_NODE_FLAGS ?? '').split(' ').filter(Boolean), ...cpuProfArgs(process.env.BENCH_CPU_PROF), ...preload]);
  const env = {
    ...productionGatewayEnv(port),
    SUPERGRAPH_PATH: 'supergraph/supergraph.graphql',
    JWT_SECRET: secret,
    JWT_ALGORITHMS: 'HS256',
    GATEWAY_CONFIG: config,
    BENCH_MEMORY_FILE: memoryFile,
    ...heapSnapshotEnv,
    ...extra,
  };
  let stderr = '';
  const child = spawnPinned(SUT_CPU, process.execPath, args, env, ['ignore', openSync(logFile, 'w'), 'pipe'], cwd);
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  children.push(child);
  const url = `http://127.0.0.1:${port}`;
  await waitReady(`${url}/health/ready`, child, () => `${stderr}\n${readFileSync(logFile, 'utf8').slice(-2000)}`, 120_000);
  const viaRoute = async (i: number) => {
    const response = await fetch(`${url}/api/v1/alerts`, {
      method: 'POST',
      headers: { authorization, 'content-type': 'application/json' },
      body: `{"type":"alert","data":${eventData(i)}}`,
    });
    if (response.status !== 201) throw new Error(`publish answered ${response.status}: ${await response.text()}`);
  };
  return { port, child, publish: publish === 'xadd' ? xadd(redis) : viaRoute, memoryFile };
}

/** Resident memory after a full GC, and the server's own account of it (the server preloads bench-gc-signal.ts). */
async function memoryAfterGc(server: Server): Promise<{ rss: number; heapUsed: number; heapTotal: number; external: number }> {
  const lines = () => (existsSync(server.memoryFile) ? readFileSync(server.memoryFile, 'utf8').trim().split('\n').filter(Boolean) : []);
  const seen = lines().length;
  process.kill(server.child.pid!, 'SIGUSR2');
  // Read once the server has written its line: a full GC of 10,000 streams on a busy core can take seconds.
  const deadline = Date.now() + 60_000;
  while (lines().length === seen && Date.now() < deadline) await sleep(100);
  if (process.env.BENCH_HEAP_SNAPSHOT_DIR) await sleep(15_000);
  await sleep(200);
  const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${server.child.pid}/status`, 'utf8'))![1]) * 1024;
  const usage = JSON.parse(lines().at(-1)!) as { heapUsed: number; heapTotal: number; external: number };
  return { rss, heapUsed: usage.heapUsed, heapTotal: usage.heapTotal, external: usage.external };
}

async function measure(name: string, server: Server, headers: Record<string, string>) {
  const path = '/api/v1/alerts/stream';
  const warm = new SseClients(server.port, path, headers);
  await warm.open(WARMUP, 64);
  warm.closeAll();
  await sleep(500);
  const before = await memoryAfterGc(server);
  const streams = new SseClients(server.port, path, headers);
  const openedAt = Date.now();
  await streams.open(clients, 64);
  const openSeconds = (Date.now() - openedAt) / 1000;
  await sleep(500);
  const after = await memoryAfterGc(server);
  const perStream = (key: keyof typeof after) => Number(((after[key] - before[key]) / clients / 1024).toFixed(1));
  const cpuBefore = cpuMicros(server.child.pid!);
  for (let i = 0; i < events; i++) {
    await server.publish(i);
    await sleep(intervalMs);
  }
  const expected = clients * events;
  const deadline = Date.now() + 15_000;
  while (streams.received < expected && Date.now() < deadline) await sleep(50);
  const cpu = cpuMicros(server.child.pid!) - cpuBefore;
  streams.closeAll();
  const latencies = streams.latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
  return {
    'system under test': name,
    streams: clients,
    'open (s)': Number(openSeconds.toFixed(1)),
    'KiB/conn': perStream('rss'),
    // Where the resident bytes are: live V8 heap, V8 heap committed (live + free pages kept), outside V8.
    'heap used': perStream('heapUsed'),
    'heap committed': perStream('heapTotal'),
    external: perStream('external'),
    delivered: `${streams.received} / ${expected}`,
    'opens retried': streams.refused + warm.refused,
    'p50 (ms)': pct(50),
    'p99 (ms)': pct(99),
    // Includes heartbeats and, on the Redis bus, the reader's blocking XREADs: the same for every row.
    'CPU µs/delivery': Number((cpu / Math.max(1, streams.received)).toFixed(2)),
  };
}

try {
  const { url: redisUrl, client: redis } = await startRedis();
  const authorization = await hs256Bearer(secret, 'bench-user', { tenant_id: TENANT, roles: ['publisher'] });
  console.log(`bench:sse: ${clients} streams, ${events} events ${intervalMs} ms apart; ${hasTaskset() ? 'server on CPU 1, redis and clients on CPU 0' : 'no taskset: processes not pinned'}`);
  const results = [];
  for (const row of rows) {
    let server: Server;
    let name: string;
    const [bus, from] = row.split('-') as [string, string | undefined];
    const cwd = from === 'compare' ? compareDir : undefined;
    const label = from === 'compare' ? ' — compared checkout' : '';
    if (row === 'bare') [server, name] = [await startBare(redisUrl, redis), 'bare node:http (Set of responses, XADD)'];
    else if (bus === 'redis') [server, name] = [await startGateway(row, authorization, { REDIS_URL: redisUrl }, 'xadd', redis, cwd), `gateway, Redis bus (XADD)${label}`];
    else if (bus === 'memory') [server, name] = [await startGateway(row, authorization, {}, 'route', redis, cwd), `gateway, in-memory bus (POST)${label}`];
    else throw new Error(`unknown row ${row} (bare, redis, memory, redis-compare, memory-compare)`);
    const result = await measure(name, server, { authorization });
    await stop(server.child);
    results.push(result);
    console.log(JSON.stringify(result));
    await sleep(1_000);
  }
  const bare = results.find((r) => r['system under test'].startsWith('bare'));
  console.table(
    results.map((r) => ({
      ...r,
      ...(bare ? { 'p50 × bare': Number((r['p50 (ms)'] / bare['p50 (ms)']).toFixed(2)), 'p99 × bare': Number((r['p99 (ms)'] / bare['p99 (ms)']).toFixed(2)) } : {}),
    })),
  );
  redis.disconnect();
} finally {
  for (const child of children) await stop(child);
}
process.exit(0);

function sleep(ms: number) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
