import { execFileSync, spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';

/** Helpers for benchmarks that run each system under test as its own, CPU-pinned process. */

/** Every child starts from this: nothing of the caller's environment but PATH leaks into a measurement. */
export const baseEnv = { PATH: process.env.PATH ?? '' };

/** Our gateway as production starts it, on loopback at `port`, with an info log line per request. */
export function productionGatewayEnv(port: number): Record<string, string> {
  return { ...baseEnv, NODE_ENV: 'production', HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info' };
}

/**
 * Our gateway as production starts it (the Dockerfile's CMD, `npm run gateway`): the built `dist/`,
 * with the same Node flags. Benchmarks measure what ships, not the sources through tsx's loader.
 */
export const PRODUCTION_NODE_FLAGS = ['--max-semi-space-size=32'] as const;
const GATEWAY_ENTRY = 'dist/src/main.js';
const builtCheckouts = new Set<string>();

/**
 * `node` arguments that start the gateway of the checkout at `cwd` as production does, after building
 * its `dist/` (once per checkout and run, so a bench always measures the checkout's current sources).
 * For BENCH_COMPARE_DIR that is the other checkout: `npm run build` writes its `dist/` in place (the
 * README's bench sections say so). Building elsewhere would not run: the compiled files find
 * `node_modules`, `package.json` and the subgraph schemas by their own location in the checkout.
 */
export function productionGatewayArgs(cwd: string = process.cwd(), extraNodeArgs: readonly string[] = []): string[] {
  if (!builtCheckouts.has(cwd)) {
    console.error(`building the gateway in ${cwd} (npm run build)`);
    execFileSync('npm', ['run', '--silent', 'build'], { cwd, stdio: ['ignore', 'ignore', 'inherit'] });
    builtCheckouts.add(cwd);
  }
  return [...PRODUCTION_NODE_FLAGS, ...extraNodeArgs, GATEWAY_ENTRY];
}

/**
 * Rate limits on, out of reach: the limiter's work is measured, never a refusal. The default bucket is
 * raised here; the class quotas (1,000 requests an hour per user by default) hold for one row's
 * requests per user, so a bench whose rows share one Redis empties it between rows.
 */
export const UNREACHED_RATE_LIMITS = { RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_REQUESTS: '1000000000', RATE_LIMIT_WINDOW_SECONDS: '60' };

/** `--cpu-prof` into `dir` when profiling was asked for (BENCH_CPU_PROF), else nothing. */
export function cpuProfArgs(dir: string | undefined): string[] {
  return dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : [];
}

// The project's one free-port helper (dev tooling only, like these scripts).
export { freePort } from '../../test/helpers/ports.js';

let tasksetAvailable: boolean | undefined;
export function hasTaskset(): boolean {
  if (tasksetAvailable === undefined) {
    try {
      execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
      tasksetAvailable = true;
    } catch {
      tasksetAvailable = false;
    }
  }
  return tasksetAvailable;
}

/** Pins an already running process (all its threads) to one CPU; a no-op without taskset. */
export function pinProcess(pid: number, cpu: number): void {
  if (hasTaskset()) execFileSync('taskset', ['-a', '-c', '-p', String(cpu), String(pid)], { stdio: 'ignore' });
}

/** Spawns `command args` pinned to `cpu` (taskset execs, so the child's pid is the program's own). */
export function spawnPinned(cpu: number, command: string, args: string[], env: NodeJS.ProcessEnv, stdio: StdioOptions, cwd?: string): ChildProcess {
  return hasTaskset()
    ? spawn('taskset', ['-c', String(cpu), command, ...args], { env, stdio, cwd })
    : spawn(command, args, { env, stdio, cwd });
}

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** User + system CPU time of a process so far, in microseconds (from /proc/<pid>/stat). */
export function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name (which may contain spaces): utime is field 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1_000_000) / CLOCK_TICKS;
}

/** Polls `url` until it answers 2xx, the process exits, or the deadline passes. */
export async function waitReady(url: string, child: ChildProcess, describe: () => string, timeoutMs = 30_000): Promise<void> {
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited !== undefined) throw new Error(`process exited with ${exited} before it was ready: ${describe()}`);
    const ok = await fetch(url).then((r) => r.ok, () => false);
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`not ready after ${timeoutMs / 1000}s: ${describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
