import type { ServerResponse } from 'node:http';

/**
 * Clean-ups tied to one client connection: each runs exactly once, when the connection closes —
 * or at once if it has already closed. A client may leave during any `await` of a stream's setup,
 * before the setup has registered anything; registering as it goes keeps every exit path covered.
 */
export class ConnectionScope {
  private readonly cleanups: (() => void)[] = [];
  private done = false;

  constructor(response: ServerResponse) {
    if (response.closed || response.destroyed) this.done = true;
    else response.once('close', () => this.close());
  }

  get closed(): boolean {
    return this.done;
  }

  defer(cleanup: () => void): void {
    if (this.done) cleanup();
    else this.cleanups.push(cleanup);
  }

  /** Runs the clean-ups now, newest first (also when the response ends with an error instead of a stream). */
  close(): void {
    if (this.done) return;
    this.done = true;
    for (const cleanup of this.cleanups.splice(0).reverse()) cleanup();
  }
}
