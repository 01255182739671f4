import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

export interface GatewayProcess {
  url: string;
  child: ChildProcess;
  logs: Record<string, unknown>[];
  exited: Promise<number | null>;
}

/** Runs `src/main.ts` as its own process (how `npm run gateway` runs it) and waits until GraphQL serves. */
export async function spawnGateway(env: Record<string, string>): Promise<GatewayProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));

  const url = await new Promise<string>((resolve, reject) => {
    let address = '';
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      logs.push(entry);
      if (typeof entry.address === 'string') address = entry.address;
      if (entry.msg === 'supergraph loaded, GraphQL is serving' && address) resolve(address);
    });
    void exited.then((code) => reject(new Error(`gateway exited with ${code} before serving: ${stderr}`)));
  });
  return { url, child, logs, exited };
}
