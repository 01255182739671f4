import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { DEADLINE_MS, POLL_MS } from './deadlines.js';
import { freePort } from './ports.js';

export interface GatewayProcess {
  url: string;
  child: ChildProcess;
  logs: Record<string, unknown>[];
  exited: Promise<number | null>;
}


/** Runs `src/main.ts` as its own process (how `npm run gateway` runs it) and waits until it is ready. */
export async function spawnGateway(env: Record<string, string>): Promise<GatewayProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      logs.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // not a log line
    }
  });
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  let exitCode: number | null | undefined;
  const exited = once(child, 'exit').then(([code]) => (exitCode = code as number | null));

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    if (exitCode !== undefined) throw new Error(`gateway exited with ${exitCode} before it was ready: ${stderr}`);
    const ready = await fetch(`${url}/health/ready`).then((r) => r.ok, () => false);
    if (ready) return { url, child, logs, exited };
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`gateway not ready after ${DEADLINE_MS / 1000}s: ${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
