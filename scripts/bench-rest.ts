import type { ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { exportSPKI, generateKeyPair } from 'jose';
import { benchVerifierEnv, mintBenchToken } from './lib/bench-tokens.js';
import { UNREACHED_RATE_LIMITS, baseEnv, cpuMicros, cpuProfArgs, freePort, hasTaskset, pinProcess, productionGatewayArgs, productionGatewayEnv, spawnPinned, stop, waitReady } from './lib/bench-procs.js';

/**
 * `npm run bench:rest`: REST passthrough, `GET /api/v1/users/<id>` (ids cycling over 1000, small
 * JSON answers), in one run against three systems under test: the upstream itself, a bare
 * @fastify/http-proxy, and the gateway as production runs it (built `dist/` with the Dockerfile's Node
 * flags, NODE_ENV=production, RS256 JWTs — 500
 * distinct tokens cycled —, rate limits on, metrics, an info log line per request into a file).
 * The system under test runs alone on CPU 1; the upstream and the load generator share CPU 0.
 * BENCH_SECONDS (default 10) per row, BENCH_CONNECTIONS (default 50); BENCH_REDIS=0 skips the row
 * with rate limits in a redis-server the bench starts itself; BENCH_CPU_PROF=<dir> writes a CPU
 * profile of the gateway there. BENCH_COMPARE_DIR=<another checkout, with node_modules> adds rows
 * for the gateway run from there, alternated with this one's (A/B on a noisy machine), BENCH_AB_ROUNDS
 * (default 2) pairs of them. BENCH_ROUNDS (default 2) alternates the bare proxy and the gateway that
 * many times, each gateway row compared with the bare row just before it, and prints the median of
 * those ratios: on a shared 2-core machine one pair can be off by 10% either way. BENCH_RATE=<req/s>
 * holds every row at that overall request rate instead of as fast as it goes: CPU µs per request is
 * then compared at the same load (batching in the event loop makes a request cheaper the busier the
 * process is), which keeps A/B rows honest when other work on the machine slows one of them down.
 */
const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
const abRounds = Number(process.env.BENCH_AB_ROUNDS ?? 2);
const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 2));
const rate = process.env.BENCH_RATE ? Number(process.env.BENCH_RATE) : undefined;
const warmupSeconds = Math.min(3, Math.max(1, Math.round(seconds / 4)));
const LOAD_CPU = 0;
const SUT_CPU = 1;
const work = mkdtempSync(join(tmpdir(), 'gw-bench-rest-'));
const children: ChildProcess[] = [];
const node = (script: string) => ['--import', 'tsx', script];

pinProcess(process.pid, LOAD_CPU);

async function startUpstream(): Promise<string> {
  const port = await freePort();
  const child = spawnPinned(LOAD_CPU, process.execPath, node('scripts/lib/bench-upstream.ts'), { ...baseEnv, PORT: String(port) }, 'inherit');
  children.push(child);
  const url = `http://127.0.0.1:${port}`;
  await waitReady(`${url}/health`, child, () => 'upstream');
  return url;
}

async function startBareProxy(upstream: string): Promise<{ url: string; pid: number; child: ChildProcess }> {
  const port = await freePort();
  const child = spawnPinned(SUT_CPU, process.execPath, node('scripts/lib/bench-bare-proxy.ts'), { ...baseEnv, PORT: String(port), UPSTREAM: upstream, NODE_ENV: 'production' }, 'inherit');
  children.push(child);
  const url = `http://127.0.0.1:${port}`;
  await waitReady(`${url}/ready`, child, () => 'bare proxy');
  return { url, pid: child.pid!, child };
}

async function startRedis(): Promise<string> {
  const port = await freePort();
  const child = spawnPinned(LOAD_CPU, 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], baseEnv, 'ignore');
  children.push(child);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { Redis } = await import('ioredis');
    const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    const ok = await probe.connect().then(() => probe.ping(), () => null);
    probe.disconnect();
    if (ok === 'PONG') return `redis://127.0.0.1:${port}/0`;
    if (Date.now() > deadline) throw new Error('redis-server did not start');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Empties the bench's own redis-server (never another: the bench started this one). */
async function flushRedis(url: string): Promise<void> {
  const { Redis } = await import('ioredis');
  const client = new Redis(url, { maxRetriesPerRequest: 1 });
  await client.flushall();
  client.disconnect();
}

async function startGateway(upstream: string, publicKey: string, extra: Record<string, string>, name: string, cwd?: string) {
  const port = await freePort();
  const logFile = join(work, `${name}.log`);
  const logFd = openSync(logFile, 'w');
  const args = productionGatewayArgs(cwd, cpuProfArgs(process.env.BENCH_CPU_PROF));
  const env = {
    ...productionGatewayEnv(port),
    SUPERGRAPH_PATH: 'supergraph/supergraph.graphql',
    USERS_SERVICE_URL: upstream,
    ...benchVerifierEnv(publicKey),
    ...UNREACHED_RATE_LIMITS,
    ...extra,
  };
  let stderr = '';
  const child = spawnPinned(SUT_CPU, process.execPath, args, env, ['ignore', logFd, 'pipe'], cwd);
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  children.push(child);
  const url = `http://127.0.0.1:${port}`;
  // Generous: on a loaded machine, loading the gateway and its dependencies can take well over 30 s.
  await waitReady(`${url}/health/ready`, child, () => `${stderr}\n${readFileSync(logFile, 'utf8').slice(-2000)}`, 180_000);
  return { url, pid: child.pid!, child, logFile, logFd };
}

/** 500 distinct RS256 tokens (users across 10 tenants), verified by the gateway against the public key. */
async function mintTokens(): Promise<{ tokens: string[]; publicKey: string }> {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const tokens = await Promise.all(
    Array.from({ length: 500 }, (_, i) => mintBenchToken(privateKey, i, 'users:read')),
  );
  return { tokens, publicKey: await exportSPKI(publicKey) };
}

interface Row {
  system: string;
  'req/s': number;
  'p50 ms': number;
  'p99 ms': number;
  'CPU µs/req': number | string;
  errors: number;
}

async function load(url: string, tokens: string[] | null, duration: number) {
  let n = 0;
  return autocannon({
    url,
    connections,
    duration,
    ...(rate ? { overallRate: rate } : {}),
    requests: [
      {
        method: 'GET',
        setupRequest: (request) => {
          const i = n++;
          request.path = `/api/v1/users/${i % 1000}`;
          if (tokens) request.headers = { ...request.headers, authorization: `Bearer ${tokens[i % tokens.length]}` };
          return request;
        },
      },
    ],
  });
}

/** Responses each system under test sent, warm-up included (checked against the gateway's log lines). */
const sent = new Map<string, number>();

async function measure(system: string, url: string, pid: number | null, tokens: string[] | null): Promise<Row> {
  const warmup = await load(url, tokens, warmupSeconds);
  const cpuBefore = pid ? cpuMicros(pid) : 0;
  const result = await load(url, tokens, seconds);
  const cpuAfter = pid ? cpuMicros(pid) : 0;
  const requests = result.requests.total;
  sent.set(system, warmup['2xx'] + warmup.non2xx + result['2xx'] + result.non2xx);
  const errors = result.errors + result.timeouts + result.non2xx;
  return {
    system,
    'req/s': Math.round(result.requests.average),
    'p50 ms': result.latency.p50,
    'p99 ms': result.latency.p99,
    'CPU µs/req': pid ? Math.round((cpuAfter - cpuBefore) / requests) : '—',
    errors,
  };
}

try {
  if (!hasTaskset()) console.warn('taskset not found: processes are not pinned, figures will be noisier');
  const { tokens, publicKey } = await mintTokens();
  const upstream = await startUpstream();
  const rows: Row[] = [];

  rows.push(await measure('upstream directly', upstream, null, null));

  /** Each pair's gateway row against the bare row measured just before it. */
  const pairs: { bare: Row; gateway: Row }[] = [];
  for (let round = 0; round < rounds; round++) {
    const bare = await startBareProxy(upstream);
    const bareRow = await measure('bare @fastify/http-proxy', bare.url, bare.pid, null);
    rows.push(bareRow);
    await stop(bare.child);

    const gateway = await startGateway(upstream, publicKey, {}, 'gateway');
    const gatewayRow = await measure('gateway, full pipeline (memory rate limits)', gateway.url, gateway.pid, tokens);
    rows.push(gatewayRow);
    pairs.push({ bare: bareRow, gateway: gatewayRow });
    await stop(gateway.child);
    closeSync(gateway.logFd);
    const lines = readFileSync(gateway.logFile, 'utf8').split('\n').filter((line) => line.includes('"request completed"')).length;
    const answered = sent.get('gateway, full pipeline (memory rate limits)');
    console.log(`gateway log: ${lines} request lines for ${answered} responses (${(statSync(gateway.logFile).size / 1e6).toFixed(1)} MB)`);
  }

  const compareDir = process.env.BENCH_COMPARE_DIR;
  /** With BENCH_COMPARE_DIR: the other checkout and this one, alternated, BENCH_AB_ROUNDS times. */
  const abCheckouts = compareDir
    ? Array.from({ length: abRounds }, () => [['other checkout', compareDir], ['this checkout', undefined]] as const).flat()
    : [];
  if (compareDir) {
    for (const [label, cwd] of abCheckouts) {
      const gw = await startGateway(upstream, publicKey, {}, 'compare', cwd);
      rows.push(await measure(`gateway, ${label}`, gw.url, gw.pid, tokens));
      await stop(gw.child);
      closeSync(gw.logFd);
    }
  }

  if (process.env.BENCH_REDIS !== '0') {
    const redisUrl = await startRedis();
    // With BENCH_COMPARE_DIR the Redis row is an A/B too: the Redis-backed paths differ between checkouts as well.
    for (const [label, cwd] of compareDir ? abCheckouts : [['', undefined] as const]) {
      // Every row starts from empty buckets, as each memory-store row does: the rows share this Redis,
      // and the class quotas (1,000 requests an hour per user by default) would run out a few rows in.
      await flushRedis(redisUrl);
      const withRedis = await startGateway(upstream, publicKey, { REDIS_URL: redisUrl }, 'gateway-redis', cwd);
      rows.push(await measure(`gateway, full pipeline (Redis rate limits)${label ? `, ${label}` : ''}`, withRedis.url, withRedis.pid, tokens));
      await stop(withRedis.child);
      closeSync(withRedis.logFd);
    }
  }

  const direct = rows[0]!['req/s'];
  const bareRps = rows[1]!['req/s'];
  const median = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    const middle = Math.floor(sorted.length / 2);
    return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  };
  const cpuOf = (row: Row) => Number(row['CPU µs/req']);
  console.log(`\n${connections} connections${rate ? `, ${rate} req/s overall` : ''}, ${seconds} s per row (after ${warmupSeconds} s warm-up); system under test on CPU ${SUT_CPU}, upstream + load on CPU ${LOAD_CPU}\n`);
  console.log('| System under test | req/s | p50 | p99 | CPU µs/req | × direct | × bare proxy | errors |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const row of rows) {
    console.log(
      `| ${row.system} | ${row['req/s']} | ${row['p50 ms']} ms | ${row['p99 ms']} ms | ${row['CPU µs/req']} | ${(row['req/s'] / direct).toFixed(2)} | ${(row['req/s'] / bareRps).toFixed(2)} | ${row.errors} |`,
    );
  }
  const throughput = pairs.map((pair) => pair.gateway['req/s'] / pair.bare['req/s']);
  const cpu = pairs.map((pair) => cpuOf(pair.bare) / cpuOf(pair.gateway));
  console.log(
    `\ngateway (memory rate limits) against the bare proxy measured just before it, ${pairs.length} pair(s): ` +
      `throughput ${throughput.map((r) => r.toFixed(2)).join(', ')} (median ${median(throughput).toFixed(2)}×), ` +
      `bare CPU per request ÷ gateway's ${cpu.map((r) => r.toFixed(2)).join(', ')} (median ${median(cpu).toFixed(2)}×)`,
  );
} finally {
  for (const child of children) await stop(child).catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
}
