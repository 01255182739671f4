import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSchema, startSubgraph, type RunningSubgraph } from '../../subgraphs/shared/server.js';
import { DEADLINE_MS } from '../helpers/deadlines.js';
import { eventually } from '../helpers/eventually.js';
import { spawnGateway } from '../helpers/gateway-process.js';
import { hs256Bearer } from '../helpers/hs256.js';
import { reviewsSubgraph } from '../helpers/reviews-subgraph.js';
import { lazyGatewayJwks, postGraphQL, writeSupergraph } from '../helpers/stack.js';

/** A gate the subgraph waits on before it verifies the gateway's token: keeps a request in flight at will. */
class Hold {
  private releaseHold!: () => void;
  private signalArrived!: () => void;
  readonly released = new Promise<void>((resolve) => (this.releaseHold = resolve));
  readonly arrived = new Promise<void>((resolve) => (this.signalArrived = resolve));
  enter(): Promise<void> {
    this.signalArrived();
    return this.released;
  }
  release(): void {
    this.releaseHold();
  }
}

let hold: Hold | null = null;
let reviews: RunningSubgraph;
let supergraphPath: string;
const keys = lazyGatewayJwks();
const ENV = { AUTH_GRAPHQL: 'optional' };

beforeAll(async () => {
  const definition = reviewsSubgraph();
  reviews = await startSubgraph(definition, {
    gatewayKey: keys.gatewayKey,
    // Runs before the subgraph verifies x-gateway-context, so that verification (and the first fetch
    // of the gateway's JWKS) happens only after the gateway has started to drain.
    configure: (app) => app.addHook('onRequest', async () => hold?.enter()),
  });
  supergraphPath = writeSupergraph([{ name: 'reviews', url: reviews.url, sdl: readSchema(definition.schemaFile) }]);
});
afterAll(() => reviews.close());

describe('graceful shutdown (SIGTERM), as a separate process', () => {
  it('completes admitted requests with correct data (the JWKS stays served), refuses new ones, exits 0', async () => {
    const gateway = await spawnGateway({ ...ENV, SUPERGRAPH_PATH: supergraphPath, NODE_ENV: 'production' });
    keys.setUrl(gateway.url); // a fresh key set: the subgraph fetches the JWKS on first use
    hold = new Hold();
    try {
      const inFlight = postGraphQL(gateway.url, { query: '{ latestReview { body } }' });
      await hold.arrived;
      gateway.child.kill('SIGTERM');
      await eventually(async () => expect((await fetch(`${gateway.url}/health/ready`)).status).toBe(503));

      const refused = await postGraphQL(gateway.url, { query: '{ __typename }' });
      expect(refused.status).toBe(503);
      expect(refused.headers.get('connection')).toBe('close');
      expect(refused.headers.get('x-content-type-options')).toBe('nosniff');
      expect(refused.body.errors?.[0]?.extensions).toMatchObject({ code: 'SHUTTING_DOWN', requestId: refused.headers.get('x-request-id') });

      hold.release();
      const response = await inFlight;
      expect(response.status).toBe(200);
      expect(response.body).toEqual({ data: { latestReview: { body: 'Works as advertised' } } });
      // Admitted before the drain, answered during it: the client is told to let the connection go.
      expect(response.headers.get('connection')).toBe('close');
      expect(await gateway.exited).toBe(0);
      expect(gateway.logs.some((entry) => entry.msg === 'shutting down: draining in-flight requests')).toBe(true);
    } finally {
      hold.release();
      hold = null;
    }
  });

  it('bounds the drain: a request outliving SHUTDOWN_TIMEOUT_MS is cut and the process still exits 0', async () => {
    const gateway = await spawnGateway({ ...ENV, SUPERGRAPH_PATH: supergraphPath, SHUTDOWN_TIMEOUT_MS: '500' });
    keys.setUrl(gateway.url);
    hold = new Hold(); // never released while the gateway lives
    try {
      const inFlight = postGraphQL(gateway.url, { query: '{ latestReview { body } }' }).catch((error: Error) => error);
      await hold.arrived;
      const signalledAt = Date.now();
      gateway.child.kill('SIGINT');
      expect(await gateway.exited).toBe(0);
      // Half a second of drain, plus process exit on a loaded machine; far below "never".
      expect(Date.now() - signalledAt).toBeLessThan(DEADLINE_MS / 3);
      expect(await inFlight).toBeInstanceOf(Error);
    } finally {
      hold.release();
      hold = null;
    }
  });
});

describe('logs when the drain is cut by SIGKILL', () => {
  it('the last request line and the "shutting down" line are written when the drain starts, not held in the batch', async () => {
    const gateway = await spawnGateway({ ...ENV, SUPERGRAPH_PATH: supergraphPath });
    keys.setUrl(gateway.url);
    hold = new Hold(); // keeps the drain going until the kill
    try {
      const inFlight = postGraphQL(gateway.url, { query: '{ latestReview { body } }' }).catch((error: Error) => error);
      await hold.arrived;
      const last = await fetch(`${gateway.url}/health`);
      const lastId = last.headers.get('x-request-id');
      gateway.child.kill('SIGTERM');
      await eventually(async () => expect((await fetch(`${gateway.url}/health/ready`)).status).toBe(503), DEADLINE_MS, 5);
      // An orchestrator's grace period can end here; the batch (up to 200 ms of lines) goes with it.
      gateway.child.kill('SIGKILL');
      await gateway.exited;
      await new Promise((resolve) => setTimeout(resolve, 50)); // the pipe's last lines reach the reader
      expect(gateway.logs.some((entry) => entry.msg === 'shutting down: draining in-flight requests')).toBe(true);
      expect(gateway.logs.some((entry) => entry.reqId === lastId && entry.msg === 'request completed')).toBe(true);
      await inFlight;
    } finally {
      hold.release();
      hold = null;
    }
  });
});

describe('a client that stops reading', () => {
  const SECRET = 'shutdown-test-secret-0123456789abcdef';
  const BODY_BYTES = 64 * 1024 * 1024; // far more than socket buffers hold
  let upstream: Server;
  let backpressured: Promise<void>;

  beforeAll(async () => {
    let signal!: () => void;
    backpressured = new Promise((resolve) => (signal = resolve));
    // A legacy service answering with a large download, written as fast as the reader takes it.
    upstream = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BODY_BYTES });
      const chunk = Buffer.alloc(64 * 1024, 1);
      let sent = 0;
      const pump = () => {
        while (sent < BODY_BYTES) {
          sent += chunk.length;
          if (!res.write(chunk)) {
            signal();
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
    });
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
  });
  afterAll(() => {
    upstream.closeAllConnections();
    upstream.close();
  });

  it('cannot hold the process: the drain deadline cuts its connection and the gateway exits 0', async () => {
    const { port } = upstream.address() as { port: number };
    const gateway = await spawnGateway({
      ...ENV,
      SUPERGRAPH_PATH: supergraphPath,
      JWT_SECRET: SECRET,
      JWT_ALGORITHMS: 'HS256',
      DOWNLOADS_SERVICE_URL: `http://127.0.0.1:${port}`,
      SHUTDOWN_TIMEOUT_MS: '1000',
    });
    const authorization = await hs256Bearer(SECRET, 'slow-reader', { tenant_id: 'acme' });
    const client = connect(Number(new URL(gateway.url).port), '127.0.0.1');
    client.on('error', () => {}); // the cut may surface as a reset
    client.write(`GET /api/v1/downloads/big HTTP/1.1\r\nhost: localhost\r\nauthorization: ${authorization}\r\n\r\n`);
    client.pause(); // and never read a byte

    await backpressured; // the response is under way and stuck behind the unread socket
    const signalledAt = Date.now();
    gateway.child.kill('SIGTERM');
    expect(await gateway.exited).toBe(0);
    expect(Date.now() - signalledAt).toBeLessThan(DEADLINE_MS / 3);
    client.destroy();
  });
});
