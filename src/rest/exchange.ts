import { EventEmitter } from 'node:events';
import type { FastifyReply } from 'fastify';

/**
 * What undici needs of a request signal: `aborted`, `reason` and an `abort` event. undici accepts an
 * EventEmitter for it; an AbortController per proxied request cost an EventTarget, its signal and
 * listener bookkeeping (~3% of a proxied request). Aborted once, never reset.
 */
class UpstreamAbort extends EventEmitter {
  aborted = false;
  reason: Error | undefined;

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = Object.assign(new Error('The exchange was cancelled'), { name: 'AbortError' });
    this.emit('abort');
  }
}

/**
 * One client request's dealings with the upstream, across retries. The gateway stops wanting an
 * upstream outcome when the client has gone, or when it has answered on its own (a body cut at the
 * limit or for idling): the exchange is then cancelled — the upstream request is aborted and
 * whatever it produces is dropped, neither answered nor counted against the service.
 */
export class Exchange {
  /** The upstream response has been handed to Fastify, which owns its stream from then on. */
  responding = false;
  private answered = false;
  private clientGone = false;
  /** The response is over: cleanups registered from now on run at once. */
  private closed = false;
  private readonly controller = new UpstreamAbort();
  private readonly cleanups: (() => void)[] = [];

  constructor(private readonly reply: FastifyReply) {
    // Fastify runs the handler even when the client left during an async hook (auth fetching a
    // JWKS, a Redis rate limit): 'close' has then been emitted already and would never reach a
    // listener, and every share taken after it would be held for ever.
    if (reply.raw.destroyed) {
      this.closed = true;
      this.clientGone = !reply.raw.writableFinished;
      if (this.clientGone) this.controller.abort();
      return;
    }
    // One listener for everything held by this request (connection shares, breaker permit, instance
    // counts), rather than one each: retries would otherwise pile listeners onto the response.
    reply.raw.once('close', () => {
      this.closed = true;
      if (!reply.raw.writableFinished) {
        this.clientGone = true;
        if (!this.responding) this.controller.abort();
      }
      for (const cleanup of this.cleanups.splice(0)) cleanup();
    });
  }

  /** Runs `cleanup` once the response is over, finished or not (at once if it is over already). */
  onEnd(cleanup: () => void): void {
    if (this.closed) cleanup();
    else this.cleanups.push(cleanup);
  }

  /** The signal to pass undici (an EventEmitter it listens to for `abort`). */
  get signal(): EventEmitter {
    return this.controller;
  }

  get cancelled(): boolean {
    return this.answered || this.clientGone || (this.reply.raw.destroyed && !this.reply.raw.writableFinished);
  }

  /** The gateway answers the client itself: abort the upstream request (unless its response is already flowing). */
  answer(): void {
    this.answered = true;
    if (!this.responding) this.controller.abort();
  }
}
