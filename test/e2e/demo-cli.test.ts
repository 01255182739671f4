import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer, type Server } from 'node:net';
import { networkInterfaces } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.js';

/**
 * The newcomer's CLIs as they really run (`npm run token`, `npm start`): separate processes, real
 * ports. Deadlines are generous because a loaded machine compiles TypeScript slowly; nothing waits a
 * fixed time, every wait polls a condition.
 */
const STARTUP_MS = 90_000;
const EXIT_MS = 60_000;

interface Cli {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
}

const running: Cli[] = [];
afterEach(() => {
  // A failed assertion must not leave a demo holding ports for the next test.
  for (const cli of running.splice(0)) if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
});

/** Runs a TypeScript entry point the way `tsx` does for npm scripts, with only the given environment. */
function runCli(script: string, args: string[] = [], env: Record<string, string> = {}): Cli {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    // No inherited HOST/PORT/NODE_ENV: each test states what it relies on.
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const cli = { child, stdout: () => stdout, stderr: () => stderr, exited };
  running.push(cli);
  return cli;
}

async function exitCode(cli: Cli): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no exit after ${EXIT_MS} ms; stderr: ${cli.stderr()}`)), EXIT_MS);
  });
  try {
    return await Promise.race([cli.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `condition` until it holds; fails early if the process died meanwhile. */
async function until(condition: () => Promise<boolean>, cli: Cli, what: string): Promise<void> {
  const deadline = Date.now() + STARTUP_MS;
  while (!(await condition())) {
    if (cli.child.exitCode !== null) throw new Error(`exited (${cli.child.exitCode}) before ${what}: ${cli.stderr()}`);
    if (Date.now() > deadline) throw new Error(`not ${what} after ${STARTUP_MS} ms: ${cli.stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Whether a TCP connection to host:port is accepted (a silently dropped one counts as refused). */
async function accepts(host: string, port: number): Promise<boolean> {
  const socket = connect({ host, port });
  try {
    await once(socket, 'connect', { signal: AbortSignal.timeout(5_000) });
    return true;
  } catch {
    return false;
  } finally {
    socket.destroy();
  }
}

async function listenOn(port: number): Promise<Server> {
  const server = createServer().listen(port, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

async function closeServer(server: Server): Promise<void> {
  server.close();
  await once(server, 'close');
}

/** The first of `count` consecutive free ports (the demo's subgraphs take DEMO_SUBGRAPH_BASE_PORT + i). */
async function freePortRun(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const first = await freePort();
    if (first + count - 1 > 65535) continue;
    const held: Server[] = [];
    try {
      for (let i = 0; i < count; i++) held.push(await listenOn(first + i));
      return first;
    } catch {
      // one of them is taken: try elsewhere
    } finally {
      await Promise.all(held.map(closeServer));
    }
  }
  throw new Error(`no run of ${count} free ports found`);
}

/** A port held busy by this test until released. */
async function busyPort(): Promise<{ port: number; release(): Promise<void> }> {
  const server = await listenOn(0);
  const { port } = server.address() as { port: number };
  return { port, release: () => closeServer(server) };
}

const externalIPv4 = Object.values(networkInterfaces())
  .flat()
  .filter((address) => address !== undefined && address.family === 'IPv4' && !address.internal)
  .map((address) => address!.address);

const stackLine = /^\s+at /m;

describe('npm run token', () => {
  it('--help prints the usage and exits 0', async () => {
    const cli = runCli('scripts/token.ts', ['--help']);
    expect(await exitCode(cli)).toBe(0);
    expect(cli.stdout()).toMatch(/^Usage: npm run token -- --sub <user id> \[options\]$/m);
    expect(cli.stdout()).toContain('--tenant-access');
    expect(cli.stderr()).toBe('');
  }, EXIT_MS);

  it.each([
    ['an unknown option', ['--bogus'], /Unknown option '--bogus'/],
    ['an option without its value', ['--sub'], /'--sub <value>' argument missing/],
    ['no --sub', ['--tenant', 'acme'], /--sub <user id> is required/],
  ])('%s: one line naming it, a pointer to --help, exit 64, no stack trace', async (_case, args, message) => {
    const cli = runCli('scripts/token.ts', args);
    expect(await exitCode(cli)).toBe(64);
    const lines = cli.stderr().trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
    expect(lines[0]).toContain('npm run token -- --help');
    expect(cli.stderr()).not.toMatch(stackLine);
    expect(cli.stdout()).toBe('');
  }, EXIT_MS);
});

describe('npm start (the demo)', () => {
  it.each([
    ['gateway', 'PORT'],
    ['legacy REST service', 'DEMO_LEGACY_REST_PORT'],
    ['accounts subgraph', 'DEMO_SUBGRAPH_BASE_PORT'],
  ])('a busy %s port: one line naming the port and %s, non-zero exit, no stack trace', async (what, variable) => {
    const busy = await busyPort();
    try {
      // Everything else on free ports (0), so only the busy one can be the cause.
      const cli = runCli('scripts/demo.ts', [], {
        LOG_LEVEL: 'warn',
        PORT: '0',
        DEMO_SUBGRAPH_BASE_PORT: '0',
        DEMO_LEGACY_REST_PORT: '0',
        [variable]: String(busy.port),
      });
      const code = await exitCode(cli);
      expect(code).not.toBe(0);
      expect(code).not.toBeNull();
      const lines = cli.stderr().trimEnd().split('\n');
      expect(lines, cli.stderr()).toHaveLength(1);
      expect(lines[0]).toContain(`port ${busy.port} (${what}) is already in use [EADDRINUSE]`);
      expect(lines[0]).toContain(`set ${variable}`);
      expect(cli.stderr()).not.toMatch(stackLine);
    } finally {
      await busy.release();
    }
  }, EXIT_MS);

  it('on configured free ports: binds 127.0.0.1, answers through the gateway, stops cleanly on SIGTERM', async () => {
    const token = runCli('scripts/token.ts', ['--sub', 'u-acme-1', '--tenant', 'acme', '--roles', 'admin']);
    expect(await exitCode(token), token.stderr()).toBe(0);
    const bearer = { authorization: `Bearer ${token.stdout().trim()}` };

    const gatewayPort = await freePort();
    const legacyPort = await freePort();
    const subgraphBase = await freePortRun(4);
    // No HOST: the default under test.
    const demo = runCli('scripts/demo.ts', [], {
      LOG_LEVEL: 'warn',
      PORT: String(gatewayPort),
      DEMO_SUBGRAPH_BASE_PORT: String(subgraphBase),
      DEMO_LEGACY_REST_PORT: String(legacyPort),
    });
    const gateway = `http://127.0.0.1:${gatewayPort}`;
    await until(() => fetch(`${gateway}/health/ready`).then((r) => r.ok, () => false), demo, 'ready');
    await until(async () => demo.stdout().includes('Ctrl-C stops everything'), demo, 'printing its banner');
    expect(demo.stdout()).toContain(`Gateway ready:  ${gateway}/graphql`);

    // One query across all four subgraphs: the gateway found them on the configured ports.
    const response = await fetch(`${gateway}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ orders { id buyer { name } items { product { name inStock } } } }' }),
    });
    const result = (await response.json()) as { data?: { orders: { buyer: { name: string } }[] }; errors?: unknown };
    expect(result.errors).toBeUndefined();
    expect(result.data?.orders[0]?.buyer.name).toBe('Alice Adams');
    for (const [i, name] of ['accounts', 'catalog', 'inventory', 'orders'].entries()) {
      const health = await fetch(`http://127.0.0.1:${subgraphBase + i}/health`).then((r) => r.json());
      expect(health).toEqual({ status: 'ok', subgraph: name });
    }
    // The token from `npm run token` is accepted, and the legacy REST service answers on its port.
    const users = await fetch(`${gateway}/api/v1/users`, { headers: bearer });
    expect(users.status).toBe(200);
    expect(await accepts('127.0.0.1', legacyPort)).toBe(true);

    // Loopback only: the machine's other addresses refuse every demo port.
    for (const address of externalIPv4) {
      for (const port of [gatewayPort, legacyPort, subgraphBase, subgraphBase + 3]) {
        expect(await accepts(address, port), `${address}:${port}`).toBe(false);
      }
    }

    demo.child.kill('SIGTERM');
    expect(await exitCode(demo), demo.stderr()).toBe(0);
    expect(await accepts('127.0.0.1', gatewayPort)).toBe(false);
  }, STARTUP_MS + 2 * EXIT_MS);
});
