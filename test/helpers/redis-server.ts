import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { eventually } from './eventually.js';
import { freePort } from './ports.js';

/**
 * A `redis-server` of the test's own, on a free port, keeping nothing on disk. The suite never
 * touches a Redis it did not start: a developer's Redis on 6379 holds the developer's data.
 */
export class RedisServer {
  private process: ChildProcess | null = null;

  private constructor(
    readonly port: number,
    private readonly extraArgs: readonly string[],
  ) {}

  static async start(extraArgs: readonly string[] = []): Promise<RedisServer> {
    // The port is free when picked but another process may take it before redis-server binds: retry.
    for (let attempt = 1; ; attempt++) {
      const server = new RedisServer(await freePort(), extraArgs);
      try {
        await server.restart();
        return server;
      } catch (error) {
        if (attempt >= 3) throw error;
      }
    }
  }

  /** The running redis-server's process id. */
  get pid(): number {
    if (!this.process?.pid) throw new Error(`redis-server on port ${this.port} is not running`);
    return this.process.pid;
  }

  /** `redis://127.0.0.1:<port>/<db>` */
  url(db = 0): string {
    return `redis://127.0.0.1:${this.port}/${db}`;
  }

  /** (Re)starts the server on the same port, empty, and waits until it answers PING. */
  async restart(): Promise<void> {
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...this.extraArgs],
      { stdio: 'ignore' },
    );
    this.process = child;
    let exited = false;
    child.once('exit', () => (exited = true));
    await eventually(async () => {
      if (exited) throw new Error(`redis-server on port ${this.port} exited at start-up`);
      await ping(this.port);
    }).catch((error: unknown) => {
      child.kill('SIGKILL');
      throw error;
    });
  }

  /** Kills the server abruptly, as an outage would. */
  async stop(): Promise<void> {
    const child = this.process;
    this.process = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
}

async function ping(port: number): Promise<void> {
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => {}); // refusals are expected while the server starts
  try {
    await probe.connect();
    if ((await probe.ping()) !== 'PONG') throw new Error('no PONG');
  } finally {
    probe.disconnect();
  }
}

/**
 * Stops a redis-server (SIGSTOP: its connections stay open and nothing answers, as when Redis hangs)
 * until the returned function resumes it. `target` is a server of the test's own, or a client of one
 * (a Cluster node, say), asked for the process id.
 */
export async function hang(target: RedisServer | { info(section: string): Promise<string> }): Promise<() => void> {
  const pid = target instanceof RedisServer ? target.pid : Number(/process_id:(\d+)/.exec(await target.info('server'))![1]);
  process.kill(pid, 'SIGSTOP');
  return () => process.kill(pid, 'SIGCONT');
}
