import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';

export type UpstreamMode = 'ok' | 'fail-500' | 'reset' | 'slow' | 'unhealthy';

/** Binary payload served at /api/v1/files/binary (same bytes on every instance). */
export const BINARY = randomBytes(256 * 1024);

/**
 * A legacy REST service on port 0, written with plain node:http so nothing smooths over what the
 * gateway does: it echoes requests, streams uploads through a hash, and can fail in several ways.
 */
export async function startUpstream(name: string) {
  let mode: UpstreamMode = 'ok';
  let hits = 0;
  /** Requests whose exchange has not closed yet (the gateway still holds them open). */
  let inFlight = 0;
  const seen: { method: string; url: string; headers: IncomingHttpHeaders }[] = [];
  const server: Server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (url === '/health') {
      res.writeHead(mode === 'unhealthy' ? 503 : 200).end();
      return;
    }
    hits++;
    inFlight++;
    res.once('close', () => inFlight--);
    seen.push({ method: req.method ?? '', url, headers: req.headers });
    if (mode === 'reset') {
      req.socket.destroy();
      return;
    }
    if (mode === 'fail-500') {
      res.writeHead(500, { 'content-type': 'application/json', 'x-instance': name }).end('{"error":"boom"}');
      return;
    }
    const respond = () => route(name, req, res);
    if (mode === 'slow') setTimeout(respond, 2_000);
    else respond();
  });
  server.keepAliveTimeout = 5_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    name,
    url: `http://127.0.0.1:${port}`,
    port,
    get hits() {
      return hits;
    },
    get inFlight() {
      return inFlight;
    },
    seen,
    setMode: (next: UpstreamMode) => (mode = next),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export type Upstream = Awaited<ReturnType<typeof startUpstream>>;

function route(name: string, req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) {
  const url = req.url ?? '/';
  const path = url.split('?')[0]!;
  const base = { 'x-instance': name };
  if (path.startsWith('/api/v1/status/')) {
    const status = Number(path.split('/').pop());
    const noContent = status === 204 || status === 304;
    const noBody = noContent || req.method === 'HEAD';
    res.writeHead(status, { ...base, ...(noContent ? {} : { 'content-type': 'text/plain' }), etag: '"v1"' });
    res.end(noBody ? undefined : `status ${status}`);
    return;
  }
  if (path === '/api/v1/files/binary') {
    res.writeHead(200, { ...base, 'content-type': 'application/octet-stream', 'content-length': BINARY.length });
    res.end(req.method === 'HEAD' ? undefined : BINARY);
    return;
  }
  if (path === '/api/v1/files/chunked') {
    res.writeHead(200, { ...base, 'content-type': 'text/plain' });
    let i = 0;
    const timer = setInterval(() => {
      res.write(`chunk-${i}\n`);
      if (++i === 5) {
        clearInterval(timer);
        res.end();
      }
    }, 5);
    return;
  }
  if (path === '/api/v1/cookies') {
    res.writeHead(200, { ...base, 'set-cookie': ['a=1; Path=/; HttpOnly', 'b=2; Path=/; Secure'], 'content-type': 'text/plain' });
    res.end('cookies');
    return;
  }
  if (path === '/api/v1/connection-nominated') {
    // RFC 9110 §7.6.1: a header named by Connection is for this hop only.
    res.writeHead(200, { ...base, connection: 'x-secret-internal', 'x-secret-internal': 'for-the-gateway-only', 'content-type': 'text/plain' });
    res.end('nominated');
    return;
  }
  if (path === '/api/v1/spoofing') {
    // An upstream that answers with its own values for fields the gateway owns on every response.
    res.writeHead(200, {
      ...base,
      'content-type': 'text/plain',
      'x-frame-options': 'ALLOWALL',
      'x-content-type-options': 'none',
      'strict-transport-security': 'max-age=0',
      'referrer-policy': 'unsafe-url',
      'cross-origin-resource-policy': 'cross-origin',
      'x-request-id': 'chosen-by-the-upstream',
      'access-control-allow-origin': '*',
      vary: 'Accept-Encoding',
    });
    res.end('spoofing');
    return;
  }
  if (path === '/api/v1/redirect') {
    res.writeHead(302, { ...base, location: '/api/v1/echo/target?from=redirect' });
    res.end();
    return;
  }
  if (path === '/api/v1/upload') {
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      hash.update(chunk);
    });
    req.on('end', () => {
      res.writeHead(200, { ...base, 'content-type': 'application/json' });
      res.end(JSON.stringify({ bytes, sha256: hash.digest('hex') }));
    });
    return;
  }
  // Everything else echoes what arrived.
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    res.writeHead(200, { ...base, 'content-type': 'application/json' });
    res.end(
      req.method === 'HEAD'
        ? undefined
        : JSON.stringify({ instance: name, method: req.method, url, headers: req.headers, body: body.toString('base64') }),
    );
  });
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** An HTTP request sent exactly as written (no URL normalisation, unlike fetch). */
export function rawRequest(
  base: string,
  path: string,
  { method = 'GET', headers = {}, body }: { method?: string; headers?: Record<string, string>; body?: Buffer | string | AsyncIterable<Buffer> } = {},
): Promise<RawResponse> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ hostname, port, path, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body === undefined || typeof body === 'string' || Buffer.isBuffer(body)) {
      req.end(body);
    } else {
      void (async () => {
        try {
          for await (const chunk of body) {
            if (!req.write(chunk)) await once(req, 'drain');
          }
          req.end();
        } catch (error) {
          req.destroy(error as Error);
        }
      })();
    }
  });
}
