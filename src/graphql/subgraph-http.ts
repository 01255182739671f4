import type { IncomingHttpHeaders } from 'node:http';
import { promisify } from 'node:util';
import { brotliDecompress, gunzip, inflate, inflateRaw, type ZlibOptions } from 'node:zlib';
import { Pool, type Dispatcher } from 'undici';

const gunzipAsync = promisify<Buffer, ZlibOptions, Buffer>(gunzip);
const inflateAsync = promisify<Buffer, ZlibOptions, Buffer>(inflate);
const inflateRawAsync = promisify<Buffer, ZlibOptions, Buffer>(inflateRaw);
const brotliAsync = promisify<Buffer, ZlibOptions, Buffer>(brotliDecompress);

/** What a subgraph answered: status, headers and the whole body, decoded, as bytes. */
export interface SubgraphResponse {
  readonly status: number;
  readonly statusText: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/** How one subgraph is called: the whole exchange within `timeoutMs`, no answer (raw or decoded) above `maxResponseBytes`. */
export interface SubgraphLimits {
  readonly timeoutMs: number;
  readonly maxResponseBytes: number;
}

/**
 * Why an exchange failed before a complete answer was in hand. `timeout`: the per-subgraph timeout
 * passed; `unavailable`: no answer at all (refused, reset, DNS, pool closed); `bad-response`: the
 * answer started but its body broke off or could not be decoded. `status` is the answer's, if any.
 */
export class SubgraphTransportError extends Error {
  constructor(
    readonly kind: 'timeout' | 'unavailable' | 'bad-response',
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'SubgraphTransportError';
  }
}

// undici's own timeout errors; any of them means the subgraph did not answer in time.
const UNDICI_TIMEOUTS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);
const NO_HEADERS: IncomingHttpHeaders = Object.freeze({});

/**
 * Keep-alive connection pools for subgraph calls, one per subgraph origin, used through undici's
 * dispatcher API: no WHATWG Request/Response/stream and no AbortSignal per call (the profile of the
 * fetch-based transport showed ~11% of the gateway's CPU there).
 */
export class SubgraphHttpClient {
  private readonly pools = new Map<string, Pool>();
  /** Which pool each subgraph uses now, to know when a pool has no subgraph left. */
  private readonly poolOf = new Map<string, string>();
  /** Pools no subgraph uses any more, until they are closed. */
  private readonly retiring = new Map<Pool, NodeJS.Timeout>();

  /**
   * @param retireAfterMs how long a pool that no subgraph uses any more stays open: operations
   * planned before a supergraph reload keep the old data sources and may still call through them.
   */
  constructor(private readonly retireAfterMs = 60_000) {}

  /**
   * The fixed part of every call from `subgraph` to `url`, built once per subgraph and again when
   * a reload changes its URL. The limits are pool options (connect timeout, undici's own cap on the
   * body it reads), so subgraphs share a pool only when they share origin and limits.
   */
  endpoint(subgraph: string, url: string, limits: SubgraphLimits): SubgraphEndpoint {
    const target = new URL(url);
    const key = `${target.origin} ${limits.timeoutMs} ${limits.maxResponseBytes}`;
    let pool = this.pools.get(key);
    if (!pool) {
      pool = new Pool(target.origin, {
        keepAliveTimeout: 30_000,
        keepAliveMaxTimeout: 600_000,
        connections: 256,
        // undici's default of 10 s would hold a call the exchange has already given up on.
        connect: { timeout: limits.timeoutMs },
        maxResponseSize: limits.maxResponseBytes,
      });
      this.pools.set(key, pool);
    }
    const previous = this.poolOf.get(subgraph);
    this.poolOf.set(subgraph, key);
    if (previous !== undefined && previous !== key) this.retireIfUnused(previous);
    return new SubgraphEndpoint(pool, `${target.pathname}${target.search}`, limits);
  }

  /**
   * Called once no client request is left (Fastify's onClose): anything still pending belongs to a
   * request that was cut at the shutdown deadline, so abort it rather than wait.
   */
  async destroy(): Promise<void> {
    for (const timer of this.retiring.values()) clearTimeout(timer);
    const pools = [...this.pools.values(), ...this.retiring.keys()];
    this.pools.clear();
    this.retiring.clear();
    await Promise.all(pools.map((pool) => pool.destroy()));
  }

  /** A pool no subgraph uses: closed later, and then gracefully (calls in flight finish). */
  private retireIfUnused(key: string): void {
    for (const used of this.poolOf.values()) if (used === key) return;
    const pool = this.pools.get(key);
    if (!pool) return;
    this.pools.delete(key);
    const timer = setTimeout(() => {
      this.retiring.delete(pool);
      pool.close().catch(() => undefined);
    }, this.retireAfterMs);
    timer.unref();
    this.retiring.set(pool, timer);
  }
}

/** POSTs to one subgraph URL; the whole exchange (queueing, connect, headers, body) within `timeoutMs`. */
export class SubgraphEndpoint {
  constructor(
    private readonly pool: Pool,
    private readonly path: string,
    readonly limits: SubgraphLimits,
  ) {}

  post(headers: Record<string, string>, body: string): Promise<SubgraphResponse> {
    return new Promise((resolve, reject) => {
      const { timeoutMs } = this.limits;
      const exchange = new Exchange(resolve, reject, this.limits);
      // undici's headers and body timeouts report a stalled socket as its own typed errors; the
      // exchange's deadline bounds the sum, including the wait for a free connection in the pool.
      this.pool.dispatch(
        { path: this.path, method: 'POST', headers, body, headersTimeout: timeoutMs, bodyTimeout: timeoutMs },
        exchange,
      );
    });
  }
}

function onDeadline(exchange: Exchange): void {
  exchange.expire();
}

/**
 * One exchange's state, and undici's handler for it: collects the body chunks and settles once.
 * Hand-written rather than undici's `request()` because that wraps every body in a Readable stream
 * and takes cancellation only through a signal object (an AbortSignal or emitter): the per-call
 * costs this transport exists to avoid.
 */
class Exchange implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | null = null;
  private readonly timer: NodeJS.Timeout;
  private settled = false;
  private status = 0;
  private statusText = '';
  private headers = NO_HEADERS;
  private readonly chunks: Buffer[] = [];
  private length = 0;

  constructor(
    private readonly resolve: (response: SubgraphResponse) => void,
    private readonly reject: (error: SubgraphTransportError) => void,
    private readonly limits: SubgraphLimits,
  ) {
    this.timer = setTimeout(onDeadline, limits.timeoutMs, this);
  }

  expire(): void {
    if (this.settled) return;
    const error = new SubgraphTransportError('timeout', `no complete answer within ${this.limits.timeoutMs} ms`, this.status || undefined);
    this.fail(error);
    // Still queued or connecting: undici takes no cancellation before onRequestStart, which aborts
    // it then; the pool's connect timeout (the same timeoutMs) bounds that wait, and undici offers
    // no bound on the queue itself.
    this.controller?.abort(error);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.settled) controller.abort(new SubgraphTransportError('timeout', 'timed out while queued'));
  }

  onResponseStart(controller: Dispatcher.DispatchController, status: number, headers: IncomingHttpHeaders, statusText?: string): void {
    this.status = status;
    this.headers = headers;
    this.statusText = statusText ?? '';
    // Announced too large: refuse before reading a byte of it (undici would only stop at the cap).
    const length = Number(headers['content-length']);
    if (length > this.limits.maxResponseBytes) {
      const error = this.tooLarge(`content-length ${length}`);
      this.fail(error);
      controller.abort(error);
    }
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.settled) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  onResponseEnd(): void {
    if (this.settled) return;
    const raw = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.length);
    this.chunks.length = 0;
    const encoding = this.headers['content-encoding'];
    if (encoding === undefined || encoding === 'identity') {
      this.succeed(raw);
      return;
    }
    decode(raw, encoding, this.limits.maxResponseBytes).then(
      (body) => this.succeed(body),
      (error: Error & { code?: string }) => {
        if (this.settled) return;
        this.fail(
          error.code === 'ERR_BUFFER_TOO_LARGE'
            ? this.tooLarge('decoded')
            : new SubgraphTransportError('bad-response', `undecodable body: ${error.message}`, this.status),
        );
      },
    );
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (this.settled) return;
    const code = (error as { code?: string }).code;
    if (error instanceof SubgraphTransportError) this.fail(error);
    else if (code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') this.fail(this.tooLarge('body'));
    else if (code && UNDICI_TIMEOUTS.has(code)) this.fail(new SubgraphTransportError('timeout', error.message, this.status || undefined));
    else if (this.status) this.fail(new SubgraphTransportError('bad-response', `body broke off: ${error.message}`, this.status));
    else this.fail(new SubgraphTransportError('unavailable', error.message));
  }

  private tooLarge(detail: string): SubgraphTransportError {
    return new SubgraphTransportError('bad-response', `answer above the limit of ${this.limits.maxResponseBytes} bytes (${detail})`, this.status);
  }

  private succeed(body: Buffer): void {
    // The deadline may have passed while a compressed body was being decoded.
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    this.resolve({ status: this.status, statusText: this.statusText, headers: this.headers, body });
  }

  private fail(error: SubgraphTransportError): void {
    this.settled = true;
    clearTimeout(this.timer);
    this.reject(error);
  }
}

/**
 * The gateway asks for no compression (on the networks subgraphs live on it costs both sides more
 * CPU than it saves), but decodes what a subgraph compresses anyway: on zlib's thread pool, so a
 * large body does not hold the event loop, and never beyond `maxBytes` (a few KB of gzip can
 * expand to gigabytes).
 */
function decode(body: Buffer, encoding: string | string[], maxBytes: number): Promise<Buffer> {
  const options: ZlibOptions = { maxOutputLength: maxBytes };
  switch (typeof encoding === 'string' ? encoding.trim().toLowerCase() : encoding.join(',')) {
    case 'gzip':
    case 'x-gzip':
      return gunzipAsync(body, options);
    case 'deflate':
      // Meant to be zlib-wrapped, sometimes raw: a zlib header has compression method 8 in its low bits.
      return (body[0]! & 0x0f) === 0x08 ? inflateAsync(body, options) : inflateRawAsync(body, options);
    case 'br':
      return brotliAsync(body, options);
    default:
      return Promise.reject(new Error(`unsupported content-encoding ${String(encoding)}`));
  }
}
