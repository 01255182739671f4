import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Dispatcher } from 'undici';
import type { Permit } from './circuit-breaker.js';
import { responseHead } from './response-head.js';
import type { UpstreamInstance } from './upstream-pool.js';

/** What the forwarder decides when the exchange reports (health, breaker, retries, the gateway's own answers). */
export interface ExchangeOwner {
  /** The upstream sent its status and headers. */
  responded(exchange: Exchange, status: number): void;
  /** The attempt failed before any response: retry elsewhere or answer 502/504. */
  failed(exchange: Exchange, error: Error): void;
  /** The response body failed before its first byte reached the client: the answer is still the gateway's. */
  bodyFailed(exchange: Exchange, error: Error): void;
  /** The response body failed after bytes went out: the client's response can only be cut. */
  bodyBroke(exchange: Exchange, error: Error): void;
  /** The client's response is over, finished or not: give back what the request held. */
  ended(exchange: Exchange): void;
}

/** The reason undici's request is aborted with: the outcome is dropped anyway, so one error serves all. */
const CANCELLED = Object.assign(new Error('The exchange was cancelled'), { name: 'AbortError' });

/**
 * One client request's dealings with the upstream, across retries, and undici's dispatch handler
 * for its attempts: the upstream's status, headers and body chunks go straight onto the client's
 * response (`writeHead` with one flat header list, `write` with backpressure through undici's
 * pause/resume, `end`), with no Readable, pipe or end-of-stream listeners in between (those cost
 * about a fifth of a proxied request). One object per request holds what the closures of the
 * previous design held (the breaker permit, the connection share, the instance in flight).
 *
 * The head is written with the first body byte, not with the upstream's headers, so a body that
 * fails before its first byte still gets the gateway's 502/504. A body that completes in the chunk
 * being read (a small response with a Content-Length, the usual case) goes out with the head in one
 * `end`. Once the head is written, the reply is hijacked: Fastify's `onResponse` hooks and request
 * log line still run, on the response's `finish` as for every route.
 *
 * The gateway stops wanting an upstream outcome when the client has gone, or when it has answered
 * on its own (a body cut at the limit or for idling): the exchange is then cancelled — the upstream
 * request is aborted and whatever it produces is dropped, neither answered nor counted against the
 * service.
 */
export class Exchange implements Dispatcher.DispatchHandler {
  /** The breaker's permit: what the outcome is recorded against. */
  permit: Permit | null = null;
  /** No outcome recorded for the permit yet: released when the response is over (a probe must not stay taken). */
  permitHeld = false;
  /** The caller's and tenant's connection share, given back when the response is over. */
  releaseShare: (() => void) | null = null;
  /** The instance of the current attempt; counted in its `active` until settled. */
  instance: UpstreamInstance | null = null;
  /** Attempts so far (0 before the first). */
  attempts = 0;
  /** Instances tried, made only when a retry needs it. */
  tried: Set<UpstreamInstance> | null = null;
  /** The upstream's status and headers arrived: the client's answer is the upstream's. */
  responding = false;

  private controller: Dispatcher.DispatchController | null = null;
  private counted = false;
  private answered = false;
  private clientGone = false;
  private closed = false;
  /** The current attempt's upstream request is over (completed or failed): nothing left to abort. */
  private upstreamDone = false;
  /** The client's response was ended at the upstream's head (204/304): what undici reports after it is moot. */
  private finishedAtHead = false;
  /** The head is on the client's response (or hijacked to be). */
  private headWritten = false;
  private status = 0;
  private headers: IncomingHttpHeaders = {};
  /** The upstream's Content-Length, -1 when it streams without one. */
  private expected = -1;
  private received = 0;
  /** The body's last chunk, held for the `end` that follows it. */
  private last: Buffer | null = null;
  private resumeOnDrain: (() => void) | null = null;
  private readonly raw: ServerResponse;

  constructor(
    private readonly owner: ExchangeOwner,
    readonly request: FastifyRequest,
    readonly reply: FastifyReply,
    /** Path (prefix rewritten) and query, as they go upstream after the instance's base path. */
    readonly path: string,
    readonly query: string,
    /** The Host the client asked for, validated ('' for none). */
    readonly host: string,
  ) {
    this.raw = reply.raw;
    // One listener for everything held by this request, rather than one each. (A client that left
    // during an async hook never gets this far: Forwarder.forward answers nothing for it, since its
    // 'close' has been emitted already and would never reach this listener.)
    this.raw.on('close', () => this.onClose());
  }

  get cancelled(): boolean {
    return this.answered || this.clientGone || (this.raw.destroyed && !this.raw.writableFinished);
  }

  get over(): boolean {
    return this.closed;
  }

  /** The upstream's head is on the client's response: the answer can no longer be the gateway's. */
  get committed(): boolean {
    return this.headWritten;
  }

  /** Counts a new attempt on `instance` (in flight until settled). */
  begin(instance: UpstreamInstance): void {
    this.settle();
    this.instance = instance;
    this.attempts++;
    instance.active++;
    this.counted = true;
    // Everything below describes one attempt: a retry starts clean, or a failed attempt's
    // `upstreamDone` would stop a client that leaves from aborting the retry's request.
    this.controller = null;
    this.upstreamDone = false;
    this.finishedAtHead = false;
    this.responding = false;
    this.headWritten = false;
    this.status = 0;
    this.headers = {};
    this.expected = -1;
    this.received = 0;
    this.last = null;
  }

  /** The current attempt is no longer in flight (least-connections and the connection limit count it). */
  settle(): void {
    if (this.counted) this.instance!.active--;
    this.counted = false;
  }

  /** The gateway answers the client itself: abort the upstream request (unless its response is already on the client's). */
  answer(): void {
    this.answered = true;
    if (!this.headWritten) this.controller?.abort(CANCELLED);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.cancelled) controller.abort(CANCELLED);
  }

  onResponseStart(controller: Dispatcher.DispatchController, status: number, headers: IncomingHttpHeaders): void {
    if (this.cancelled) {
      controller.abort(CANCELLED);
      return;
    }
    // Informational (103 Early Hints; undici handles 100 and 101 itself): not the answer, so neither
    // forwarded nor an outcome — a half-open breaker's probe must wait for the final status.
    if (status < 200) return;
    this.responding = true;
    this.status = status;
    this.headers = headers;
    const length = headers['content-length'];
    this.expected = length === undefined ? -1 : Number(length);
    this.owner.responded(this, status);
    if (status === 204 || status === 304) this.finishAtHead();
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.cancelled) return;
    this.received += chunk.length;
    // The body is complete with this chunk: undici calls onResponseEnd next, in the same read.
    if (this.received === this.expected) {
      this.last = chunk;
      return;
    }
    if (!this.headWritten) this.commit();
    if (!this.raw.write(chunk)) {
      controller.pause();
      this.raw.once('drain', (this.resumeOnDrain ??= () => this.controller?.resume()));
    }
  }

  onResponseEnd(): void {
    this.upstreamDone = true;
    if (this.cancelled || this.finishedAtHead) return;
    if (!this.headWritten) this.commit();
    const last = this.last;
    this.last = null;
    if (last) this.raw.end(last);
    else this.raw.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.upstreamDone = true;
    this.last = null;
    // Cancelled: the client left or the gateway answered; the error is the abort's echo, not the upstream's failure.
    // Finished at the head: the response is complete; undici's complaint (a Content-Length on a 304) is moot.
    if (this.cancelled || this.finishedAtHead) return;
    if (!this.responding) this.owner.failed(this, error);
    else if (!this.headWritten) this.owner.bodyFailed(this, error);
    else this.owner.bodyBroke(this, error);
  }

  /**
   * A 204 or 304 has no body whatever its Content-Length says (a 304's describes the representation it
   * stands for): the response is complete with its head. undici, which exempts only HEAD, would
   * fail such a 304 with a length mismatch after the fact; by then the client has its answer.
   */
  private finishAtHead(): void {
    this.finishedAtHead = true;
    this.commit();
    this.raw.end();
  }

  private commit(): void {
    this.headWritten = true;
    // From here the response is written here; Fastify still runs its onResponse hooks on 'finish'.
    this.reply.hijack();
    this.raw.writeHead(this.status, responseHead(this.reply.getHeaders(), this.headers, !this.request.raw.complete));
    // For the response-size metric, which reads the reply's Content-Length (a 304's is not sent bytes).
    const length = this.headers['content-length'];
    if (length !== undefined && !this.finishedAtHead) this.reply.header('content-length', length);
  }

  private onClose(): void {
    this.closed = true;
    if (!this.raw.writableFinished) {
      this.clientGone = true;
      if (!this.upstreamDone) this.controller?.abort(CANCELLED);
    }
    this.owner.ended(this);
  }
}
