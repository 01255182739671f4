import type { ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import autocannon from 'autocannon';
import { exportSPKI, generateKeyPair } from 'jose';
import { benchVerifierEnv, mintBenchToken } from './lib/bench-tokens.js';
import { composeSubgraphs } from '../src/composition/compose.js';
import { UNREACHED_RATE_LIMITS, baseEnv, cpuMicros, cpuProfArgs, freePort, hasTaskset, pinProcess, productionGatewayArgs, productionGatewayEnv, spawnPinned, stop, waitReady } from './lib/bench-procs.js';
import { HEAVY_QUERY } from './lib/guild-bench/query.js';
import { SUBGRAPH_NAMES, subgraphSdl } from './lib/guild-bench/schemas.js';

/**
 * `npm run bench`: The Guild's federation benchmark shape (four subgraphs, the heavy nested query:
 * 16 subgraph fetches, ~87 KB response), side by side in one run: stock @apollo/gateway behind
 * @apollo/server's standalone server (defaults), and this gateway in its own process
 * (built `dist/`, started with the Dockerfile's Node flags) with the whole pipeline on (NODE_ENV=production, a distinct RS256 JWT per request, rate limits with a
 * generous limit, metrics, an info log line per request into a file). Each gateway is one process
 * on CPU 1 for the whole run (only the one being measured is loaded); the memoised subgraphs and
 * autocannon share CPU 0. Rows alternate (stock, ours, stock, ours…) so both see the same machine.
 *
 * BENCH_SECONDS (default 10) per row after a warm-up (and BENCH_WARMUP_ANSWERS, default 500, answers
 * from each gateway before the first row); BENCH_CONNECTIONS (default 50); BENCH_ROUNDS
 * (default 2) pairs of rows; BENCH_TOKENS (default 6000) distinct tokens, none sent twice to a gateway
 * unless the run needs more (then it says so);
 * BENCH_GATEWAY_ENV='K=V K2=V2' extra environment for our gateway; BENCH_COMPARE_DIR=<another
 * checkout, with node_modules> adds a row per round for the gateway started from there (A/B);
 * BENCH_CPU_PROF=<dir> writes a CPU profile of every gateway process there; BENCH_CHECK_ONLY=1 stops
 * after checking that every gateway gives stock's answer (a quick correctness check, no load).
 */
const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
const tokenCount = Number(process.env.BENCH_TOKENS ?? 6000);
const warmupSeconds = Math.min(3, Math.max(1, Math.round(seconds / 4)));
const compareDir = process.env.BENCH_COMPARE_DIR;
// Absolute: a gateway started from BENCH_COMPARE_DIR has another working directory.
const profDir = process.env.BENCH_CPU_PROF ? resolvePath(process.env.BENCH_CPU_PROF) : undefined;
const gatewayEnv = parseEnvList(process.env.BENCH_GATEWAY_ENV ?? '');
const checkOnly = process.env.BENCH_CHECK_ONLY === '1';
const LOAD_CPU = 0;
const SUT_CPU = 1;
const work = mkdtempSync(join(tmpdir(), 'gw-bench-gql-'));
const children: ChildProcess[] = [];
const body = JSON.stringify({ query: HEAVY_QUERY, operationName: 'TestQuery' });
let processCount = 0;

function parseEnvList(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of text.split(/\s+/).filter(Boolean)) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new Error(`BENCH_GATEWAY_ENV: "${pair}" is not K=V`);
    env[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return env;
}

/**
 * `node [--cpu-prof …] [--import tsx] <script>`, profiled on request: a directory per process, as Node
 * writes one profile per thread (tsx's loader has its own; the largest is the main thread's).
 */
function nodeArgs(script: string, label: string): string[] {
  const prof = cpuProfArgs(profDir && join(profDir, `${label}-${++processCount}`));
  return [...prof, ...(script.endsWith('.ts') ? ['--import', 'tsx'] : []), script];
}

pinProcess(process.pid, LOAD_CPU);

async function startSubgraphs(): Promise<{ url: string; pid: number }> {
  const port = await freePort();
  const child = spawnPinned(LOAD_CPU, process.execPath, ['--import', 'tsx', 'scripts/lib/guild-bench/subgraphs-server.ts'], { ...baseEnv, PORT: String(port), NODE_ENV: 'production' }, 'inherit');
  children.push(child);
  const url = `http://127.0.0.1:${port}`;
  await waitReady(`${url}/health`, child, () => 'subgraphs');
  return { url, pid: child.pid! };
}

function writeSupergraph(subgraphsUrl: string): string {
  const outcome = composeSubgraphs(SUBGRAPH_NAMES.map((name) => ({ name, url: `${subgraphsUrl}/${name}`, sdl: subgraphSdl(name) })));
  if (!outcome.ok) throw new Error(`composition failed: ${JSON.stringify(outcome.errors)}`);
  const path = join(work, 'supergraph.graphql');
  writeFileSync(path, outcome.supergraphSdl);
  return path;
}

interface Gateway {
  name: string;
  /** Next token to send: kept across rows, so a gateway never sees a token again (its token cache would hit). */
  tokenCursor: number;
  url: string;
  child: ChildProcess;
  logFile: string;
  logFd: number;
  authenticated: boolean;
}

/** Ready once it answers a trivial query (stock Apollo Server 5 has no health route). */
async function waitGraphQLReady(url: string, child: ChildProcess, headers: Record<string, string>, describe: () => string): Promise<void> {
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited !== undefined) throw new Error(`gateway exited with ${exited} before it was ready: ${describe()}`);
    const ok = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{"query":"{ __typename }"}' }).then(
      (response) => response.ok,
      () => false,
    );
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`gateway not ready after 60 s: ${describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function startStock(supergraphPath: string): Promise<Gateway> {
  const port = await freePort();
  const logFile = join(work, 'stock.log');
  const logFd = openSync(logFile, 'w');
  const env = { ...baseEnv, NODE_ENV: 'production', PORT: String(port), SUPERGRAPH_PATH: supergraphPath };
  const child = spawnPinned(SUT_CPU, process.execPath, nodeArgs('scripts/lib/guild-bench/stock-gateway.mjs', 'stock'), env, ['ignore', logFd, logFd]);
  children.push(child);
  const url = `http://127.0.0.1:${port}/`;
  await waitGraphQLReady(url, child, {}, () => readFileSync(logFile, 'utf8').slice(-2000));
  return { name: 'stock', tokenCursor: 0, url, child, logFile, logFd, authenticated: false };
}

async function startOurs(supergraphPath: string, publicKey: string, token: string, name: string, cwd?: string): Promise<Gateway> {
  const port = await freePort();
  const logFile = join(work, `${name}.log`);
  const logFd = openSync(logFile, 'w');
  const env = {
    ...productionGatewayEnv(port),
    SUPERGRAPH_PATH: supergraphPath,
    ...benchVerifierEnv(publicKey),
    ...UNREACHED_RATE_LIMITS,
    ...gatewayEnv,
  };
  let stderr = '';
  const prof = cpuProfArgs(profDir && join(profDir, `${name}-${++processCount}`));
  const child = spawnPinned(SUT_CPU, process.execPath, productionGatewayArgs(cwd, prof), env, ['ignore', logFd, 'pipe'], cwd);
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  children.push(child);
  const base = `http://127.0.0.1:${port}`;
  const describe = () => `${stderr}\n${readFileSync(logFile, 'utf8').slice(-2000)}`;
  await waitReady(`${base}/health/ready`, child, describe, 60_000);
  await waitGraphQLReady(`${base}/graphql`, child, { authorization: `Bearer ${token}` }, describe);
  return { name, tokenCursor: 2, url: `${base}/graphql`, child, logFile, logFd, authenticated: true };
}

async function stopGateway(gateway: Gateway): Promise<void> {
  await stop(gateway.child);
  closeSync(gateway.logFd);
}

/**
 * Distinct RS256 tokens (users across 10 tenants), verified by our gateway against the public key.
 * Minting thousands takes seconds of CPU, so it runs while the gateways start: `tokens` fills in
 * chunks, yielding between them so their readiness polls still run, and `done` says when it is full.
 */
async function startMinting(): Promise<{ tokens: string[]; publicKey: string; done: Promise<void> }> {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const mint = (i: number) => mintBenchToken(privateKey, i, 'reviews:read');
  // The first two are needed at once: readiness probe and the answer check.
  const tokens = [await mint(0), await mint(1)];
  const done = (async () => {
    const started = performance.now();
    for (let from = tokens.length; from < tokenCount; from += 100) {
      const chunk = Array.from({ length: Math.min(100, tokenCount - from) }, (_, k) => mint(from + k));
      tokens.push(...(await Promise.all(chunk)));
      await new Promise((resolve) => setImmediate(resolve));
    }
    console.log(`${tokens.length} RS256 tokens minted in ${((performance.now() - started) / 1000).toFixed(1)} s (while the gateways started)`);
  })();
  return { tokens, publicKey: await exportSPKI(publicKey), done };
}

interface SubgraphStats {
  requests: number;
  bytes: number;
}

async function subgraphStats(subgraphsUrl: string): Promise<SubgraphStats> {
  return (await (await fetch(`${subgraphsUrl}/stats`)).json()) as SubgraphStats;
}

/** One heavy query, checked: HTTP 200, no errors, data present. Also what it cost the subgraphs. */
async function heavyOnce(gateway: Gateway, token: string, subgraphsUrl: string) {
  const before = await subgraphStats(subgraphsUrl);
  const response = await fetch(gateway.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(gateway.authenticated ? { authorization: `Bearer ${token}` } : {}) },
    body,
  });
  const text = await response.text();
  const after = await subgraphStats(subgraphsUrl);
  const result = JSON.parse(text) as { data?: unknown; errors?: unknown[] };
  if (response.status !== 200 || result.errors || !result.data) {
    throw new Error(`${gateway.name}: the heavy query failed (HTTP ${response.status}): ${text.slice(0, 1000)}`);
  }
  return { data: result.data, bytes: Buffer.byteLength(text), fetches: after.requests - before.requests, subgraphBytes: after.bytes - before.bytes };
}

interface Row {
  round: number;
  system: string;
  rps: number;
  p50: number;
  p99: number;
  cpuMsPerRequest: number;
  /** The subgraphs' CPU per request: if it nears the gateway's, the subgraphs' core is the limit, not the gateway. */
  subgraphsCpuMsPerRequest: number;
  errors: number;
  /** What the errors were: `HTTP 503`, a GraphQL error code, a socket error… */
  errorKinds: Map<string, number>;
}

interface ConnectionTiming {
  sentAt?: number;
}

/** Answers before each row's window: the load settles (every connection busy, caches and heap in use). */
const WARMUP_RESPONSES = Math.max(100, connections * 2);
/**
 * Answers each gateway gives once, before the first round, unmeasured: enough that it has planned,
 * compiled and JIT-optimised everything (ours kept improving over the first few hundred answers).
 */
const FIRST_WARMUP_RESPONSES = Number(process.env.BENCH_WARMUP_ANSWERS ?? 500);
const WARMUP_LIMIT_MS = 90_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One continuous load run: a warm-up (at least `warmupSeconds` and WARMUP_RESPONSES answers), then
 * the measured window, under full load from start to end. Throughput, latency and CPU all come from
 * the window alone: no start-up ramp, and no work left over from an earlier run's abandoned requests.
 */
async function measure(
  round: number,
  system: string,
  gateway: Gateway,
  tokens: string[],
  subgraphsPid: number,
  warmupAnswers = WARMUP_RESPONSES,
  windowSeconds = seconds,
): Promise<Row> {
  const pid = gateway.child.pid!;
  const authTokens = gateway.authenticated ? tokens : null;
  let answered = 0;
  let inWindow = false;
  const latencies: number[] = [];
  const errorKinds = new Map<string, number>();
  const countError = (kind: string, window: boolean) => {
    if (window) errorKinds.set(kind, (errorKinds.get(kind) ?? 0) + 1);
  };
  const instance = autocannon(
    {
      url: gateway.url,
      connections,
      // Stopped by hand once the window closes.
      duration: WARMUP_LIMIT_MS / 1000 + seconds + 10,
      // On a loaded machine a heavy query can queue for seconds; a timeout would only hide that.
      timeout: 60,
      requests: [
        {
          method: 'POST',
          body,
          headers: { 'content-type': 'application/json' },
          // `context` is per connection, and a connection has one request in flight: it carries the send time.
          setupRequest: (request, context) => {
            (context as ConnectionTiming).sentAt = performance.now();
            if (authTokens) request.headers = { ...request.headers, authorization: `Bearer ${authTokens[gateway.tokenCursor++ % authTokens.length]}` };
            return request;
          },
          onResponse: (status, responseBody, context) => {
            answered++;
            if (!inWindow) return;
            latencies.push(performance.now() - (context as ConnectionTiming).sentAt!);
            // A 200 carrying GraphQL errors is a failure too (a subgraph error is not a fast answer).
            if (status !== 200) countError(`HTTP ${status}`, true);
            else if (responseBody.includes('"errors":')) countError(`GraphQL ${/"code":"(\w+)"/.exec(responseBody)?.[1] ?? 'error'}`, true);
          },
        },
      ],
    },
    () => undefined,
  );
  // Socket errors and timeouts count in the window too: they stall a connection there.
  instance.on('reqError', (error: NodeJS.ErrnoException) => countError(error.code ?? error.message, inWindow));
  const finished = new Promise<autocannon.Result>((resolve, reject) => {
    instance.once('done', resolve);
    instance.once('error', reject);
  });
  const started = performance.now();
  while (performance.now() - started < warmupSeconds * 1000 || (answered < warmupAnswers && performance.now() - started < WARMUP_LIMIT_MS)) {
    await sleep(100);
  }
  const windowStart = { at: performance.now(), cpu: cpuMicros(pid), subgraphsCpu: cpuMicros(subgraphsPid) };
  inWindow = true;
  await sleep(windowSeconds * 1000);
  const windowEnd = { at: performance.now(), cpu: cpuMicros(pid), subgraphsCpu: cpuMicros(subgraphsPid) };
  inWindow = false;
  instance.stop();
  await finished;
  latencies.sort((a, b) => a - b);
  const quantile = (q: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN);
  const answers = Math.max(1, latencies.length);
  const row: Row = {
    round,
    system,
    rps: latencies.length / ((windowEnd.at - windowStart.at) / 1000),
    p50: quantile(0.5),
    p99: quantile(0.99),
    cpuMsPerRequest: (windowEnd.cpu - windowStart.cpu) / 1000 / answers,
    subgraphsCpuMsPerRequest: (windowEnd.subgraphsCpu - windowStart.subgraphsCpu) / 1000 / answers,
    errors: [...errorKinds.values()].reduce((sum, count) => sum + count, 0),
    errorKinds,
  };
  const kinds = [...errorKinds].map(([kind, count]) => `${count}× ${kind}`).join(', ');
  console.log(`round ${round}, ${system}: ${row.rps.toFixed(1)} req/s, ${row.cpuMsPerRequest.toFixed(1)} ms CPU/req${kinds ? `; errors: ${kinds}` : ''}`);
  if (authTokens && gateway.tokenCursor > authTokens.length) {
    console.warn(`  ${gateway.name} has been sent ${gateway.tokenCursor} requests but there are ${authTokens.length} tokens: some were sent twice (raise BENCH_TOKENS)`);
  }
  return row;
}

const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / Math.max(1, values.length);

function describeAnswer(name: string, answer: Awaited<ReturnType<typeof heavyOnce>>): string {
  return `${name}: heavy query → ${answer.fetches} subgraph fetches, ${(answer.subgraphBytes / 1000).toFixed(1)} KB of subgraph answers, ${(answer.bytes / 1000).toFixed(1)} KB response`;
}

/** Every gateway must give stock's `data`, without errors, before anything is measured. */
async function checkSameAnswers(stock: Gateway, others: Gateway[], tokens: string[], subgraphsUrl: string): Promise<void> {
  const reference = await heavyOnce(stock, tokens[0]!, subgraphsUrl);
  console.log(describeAnswer(stock.name, reference));
  for (const gateway of others) {
    const answer = await heavyOnce(gateway, tokens[1]!, subgraphsUrl);
    console.log(describeAnswer(gateway.name, answer));
    if (JSON.stringify(reference.data) !== JSON.stringify(answer.data)) {
      const kept = mkdtempSync(join(tmpdir(), 'gw-bench-gql-diff-'));
      writeFileSync(join(kept, 'stock.json'), JSON.stringify(reference.data, null, 1));
      writeFileSync(join(kept, `${gateway.name}.json`), JSON.stringify(answer.data, null, 1));
      throw new Error(`${gateway.name} answers the heavy query differently from stock (both answers are in ${kept})`);
    }
  }
  console.log('same data from every gateway, no errors\n');
}

function printReport(rows: Row[]): void {
  const stockRows = rows.filter((row) => row.system.startsWith('stock'));
  const stockOf = (round: number) => stockRows.find((row) => row.round === round)!;
  console.log(
    `\n${connections} connections, ${seconds} s per row (after a warm-up of at least ${warmupSeconds} s and ${WARMUP_RESPONSES} answers); gateway on CPU ${SUT_CPU}, subgraphs + load on CPU ${LOAD_CPU}` +
      (Object.keys(gatewayEnv).length ? `; ours with ${process.env.BENCH_GATEWAY_ENV}` : '') +
      '\n',
  );
  console.log('| Gateway | req/s | p50 | p99 | gateway CPU ms/req | × stock req/s | × stock CPU/req | subgraphs CPU ms/req | errors |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const row of rows) {
    const stock = stockOf(row.round);
    console.log(
      `| ${row.system} | ${row.rps.toFixed(1)} | ${row.p50} ms | ${row.p99} ms | ${row.cpuMsPerRequest.toFixed(1)} | ${(row.rps / stock.rps).toFixed(2)} | ${(row.cpuMsPerRequest / stock.cpuMsPerRequest).toFixed(2)} | ${row.subgraphsCpuMsPerRequest.toFixed(1)} | ${row.errors} |`,
    );
  }
  for (const system of [...new Set(rows.map((row) => row.system))].filter((name) => !name.startsWith('stock'))) {
    const mine = rows.filter((row) => row.system === system);
    console.log(
      `\n${system} / stock, mean of ${mine.length} rounds: throughput ${(mean(mine.map((r) => r.rps)) / mean(stockRows.map((r) => r.rps))).toFixed(2)}×, ` +
        `CPU per request ${(mean(mine.map((r) => r.cpuMsPerRequest)) / mean(stockRows.map((r) => r.cpuMsPerRequest))).toFixed(2)}×`,
    );
  }
  const failed = rows.filter((row) => row.errors > 0);
  if (failed.length > 0) {
    console.error(`\nerrors in ${failed.map((row) => `${row.system} (round ${row.round})`).join(', ')}: those figures do not count`);
    process.exitCode = 1;
  }
}

try {
  if (!hasTaskset()) console.warn('taskset not found: processes are not pinned, figures will be noisier');
  const { url: subgraphsUrl, pid: subgraphsPid } = await startSubgraphs();
  const supergraphPath = writeSupergraph(subgraphsUrl);
  const { tokens, publicKey, done: minted } = await startMinting();

  // One process per gateway for the whole run; rows alternate between them (only one is loaded at a time).
  const stock = await startStock(supergraphPath);
  const ours = await startOurs(supergraphPath, publicKey, tokens[0]!, 'ours');
  const other = compareDir ? await startOurs(supergraphPath, publicKey, tokens[0]!, 'compare', compareDir) : null;
  await minted;
  await checkSameAnswers(stock, other ? [ours, other] : [ours], tokens, subgraphsUrl);

  if (!checkOnly) {
    for (const gateway of [stock, ours, ...(other ? [other] : [])]) {
      const started = performance.now();
      // A row with a one-second window, not reported: the warm-up is what counts.
      await measure(0, `${gateway.name} (first warm-up)`, gateway, tokens, subgraphsPid, FIRST_WARMUP_RESPONSES, 1);
      console.log(`  ${gateway.name} warmed up in ${((performance.now() - started) / 1000).toFixed(0)} s`);
    }
    const rows: Row[] = [];
    for (let round = 1; round <= rounds; round++) {
      rows.push(await measure(round, 'stock @apollo/gateway + @apollo/server standalone', stock, tokens, subgraphsPid));
      rows.push(await measure(round, 'ours, full pipeline', ours, tokens, subgraphsPid));
      if (other) rows.push(await measure(round, 'ours, BENCH_COMPARE_DIR checkout', other, tokens, subgraphsPid));
    }
    for (const gateway of [stock, ours, ...(other ? [other] : [])]) await stopGateway(gateway);
    const logLines = readFileSync(ours.logFile, 'utf8').split('\n').filter((line) => line.includes('"request completed"')).length;
    console.log(`ours logged ${logLines} request lines (${(statSync(ours.logFile).size / 1e6).toFixed(1)} MB)`);
    printReport(rows);
  }
} finally {
  for (const child of children) await stop(child).catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
}
