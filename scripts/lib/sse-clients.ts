import { connect, type Socket } from 'node:net';

/**
 * The measuring side of `npm run bench:sse`: many event-stream clients on raw sockets read with
 * `onread` (one reused buffer, no stream machinery, no HTTP client objects), so that the one
 * measuring process stays as light as it can: on a small machine it is the floor of the latencies.
 * Events carry `"sentAt":<ms>` in their data; each arrival records `now - sentAt`.
 */
const MARK = Buffer.from('"sentAt":');
const READ_BUFFER = Buffer.alloc(64 * 1024); // shared: every callback consumes it before returning

export class SseClients {
  readonly latencies: number[] = [];
  /** Opens refused with 503, 429 or 408 (an overloaded machine) and tried again, as EventSource would. */
  refused = 0;
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
        for (let attempt = 1; ; attempt++) {
          try {
            await this.openOne();
            break;
          } catch (error) {
            if (!(error instanceof Refused) || attempt >= 20) throw error;
            this.refused++;
            await new Promise((resolve) => setTimeout(resolve, 250));
          }
        }
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
      let ready = false;
      let head = '';
      // Bytes of a frame cut by a read boundary (rare: frames are small), joined with the next read.
      let carry: Buffer | null = null;
      const onData = (nread: number, buffer: Buffer): boolean => {
        const now = Date.now();
        let bytes = buffer.subarray(0, nread);
        if (!ready) {
          head += bytes.toString('latin1');
          if (!head.startsWith('HTTP/1.1 200')) {
            if (head.includes('\r\n\r\n')) {
              socket.destroy();
              const status = head.slice(9, 12);
              reject(status === '503' || status === '429' || status === '408' ? new Refused(status) : new Error(`stream refused: ${head.slice(0, 300)}`));
            }
            return true;
          }
          if (!head.includes('retry:')) return true;
          ready = true;
          resolve();
          bytes = Buffer.from(head, 'latin1');
          head = '';
        }
        if (carry) {
          bytes = Buffer.concat([carry, bytes]);
          carry = null;
        }
        let at = bytes.indexOf(MARK);
        let kept = Math.max(0, bytes.length - MARK.length - 1);
        while (at !== -1) {
          let value = 0;
          let i = at + MARK.length;
          for (; i < bytes.length && bytes[i]! >= 48 && bytes[i]! <= 57; i++) value = value * 10 + bytes[i]! - 48;
          if (i === bytes.length) {
            kept = at; // the number may go on in the next read
            break;
          }
          this.latencies.push(now - value);
          kept = Math.max(i, kept);
          at = bytes.indexOf(MARK, i);
        }
        if (kept < bytes.length) carry = Buffer.from(bytes.subarray(kept));
        return true;
      };
      const socket = connect({ port: this.port, host: '127.0.0.1', onread: { buffer: READ_BUFFER, callback: onData } });
      this.sockets.add(socket);
      const lines = Object.entries(this.headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
      socket.write(`GET ${this.path} HTTP/1.1\r\nhost: 127.0.0.1:${this.port}\r\naccept: text/event-stream\r\n${lines}\r\n`);
      socket.on('error', (error) => (ready ? undefined : reject(error)));
      socket.on('close', () => {
        this.sockets.delete(socket);
        if (!ready) reject(new Error(`stream closed before it opened: ${head.slice(0, 200)}`));
      });
    });
  }
}

class Refused extends Error {}
