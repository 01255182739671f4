import { connect, type Socket } from 'node:net';

/**
 * The measuring side of `npm run bench:sse`: many event-stream clients on raw sockets (no HTTP
 * client objects, so the one measuring process stays as light as it can be). Events carry
 * `"sentAt":<ms>` in their data; each arrival records `now - sentAt`.
 */
export class SseClients {
  readonly latencies: number[] = [];
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly port: number,
    private readonly path: string,
    private readonly headers: Record<string, string>,
  ) {}

  /** Opens `count` streams, `concurrency` at a time; resolves once every one has its `retry:` line. */
  async open(count: number, concurrency = 200): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < count) {
        next++;
        await this.openOne();
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  }

  /** Events received so far (across all clients). */
  get received(): number {
    return this.latencies.length;
  }

  closeAll(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  private openOne(): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = connect(this.port, '127.0.0.1');
      this.sockets.add(socket);
      const lines = Object.entries(this.headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
      socket.write(`GET ${this.path} HTTP/1.1\r\nhost: 127.0.0.1:${this.port}\r\naccept: text/event-stream\r\n${lines}\r\n`);
      let ready = false;
      let tail = '';
      socket.on('error', (error) => (ready ? undefined : reject(error)));
      socket.on('close', () => {
        this.sockets.delete(socket);
        if (!ready) reject(new Error(`stream closed before it opened: ${tail.slice(0, 200)}`));
      });
      socket.on('data', (chunk: Buffer) => {
        const now = Date.now();
        const text = tail + chunk.toString('latin1');
        if (!ready) {
          if (!text.startsWith('HTTP/1.1 200')) {
            if (text.includes('\r\n\r\n')) {
              socket.destroy();
              reject(new Error(`stream refused: ${text.slice(0, 300)}`));
            } else tail = text;
            return;
          }
          if (!text.includes('retry:')) return void (tail = text);
          ready = true;
          resolve();
        }
        // A match touching the end may be cut mid-number: it is kept for the next chunk.
        const pattern = /"sentAt":(\d+)/g;
        let kept = text.length;
        let match: RegExpExecArray | null;
        let consumed = 0;
        while ((match = pattern.exec(text))) {
          const end = match.index + match[0].length;
          if (end === text.length) {
            kept = match.index;
            break;
          }
          this.latencies.push(now - Number(match[1]));
          consumed = end;
        }
        tail = text.slice(Math.min(kept, Math.max(consumed, text.length - 32)));
      });
    });
  }
}
