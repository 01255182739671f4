import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { stringify } from 'yaml';
import { accountsSubgraph } from '../../subgraphs/accounts/index.js';
import { startStack, type Stack } from '../helpers/stack.js';

let stack: Stack;
let upstreamUrl: string;
const handshakes: IncomingHttpHeaders[] = [];
const server = createServer();
const wss = new WebSocketServer({ server });
wss.on('connection', (socket, request) => {
  handshakes.push(request.headers);
  socket.on('message', (data) => socket.send(`echo:${data.toString()}`));
});

beforeAll(async () => {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  upstreamUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const file = join(mkdtempSync(join(tmpdir(), 'gw-ws-')), 'gateway.yaml');
  writeFileSync(
    file,
    stringify({
      services: { training: { upstreams: [{ url: upstreamUrl }] } },
      routes: [{ prefix: '/api/v1/training/ws', service: 'training', websocket: true }],
    }),
  );
  stack = await startStack({ definitions: [accountsSubgraph()], env: { GATEWAY_CONFIG: file } });
});
afterAll(async () => {
  await stack.close();
  wss.close();
  server.close();
});

function connect(headers: Record<string, string>): Promise<WebSocket> {
  const socket = new WebSocket(`${stack.url.replace('http', 'ws')}/api/v1/training/ws`, { headers });
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve(socket));
    socket.once('unexpected-response', (_request, response) => reject(new Error(`status ${response.statusCode}`)));
    socket.once('error', reject);
  });
}

describe('WebSocket passthrough', () => {
  it('refuses the upgrade without credentials', async () => {
    await expect(connect({})).rejects.toThrow('status 401');
    expect(handshakes).toHaveLength(0);
  });

  it('authenticates the upgrade, then proxies messages both ways with identity headers upstream', async () => {
    const socket = await connect(await stack.bearer({ roles: ['trainer'] }));
    socket.send('hello');
    const [reply] = await once(socket, 'message');
    expect(String(reply)).toBe('echo:hello');
    socket.close();
    const handshake = handshakes.at(-1)!;
    expect(handshake['x-user-id']).toBe('u-acme-1');
    expect(handshake['x-tenant-id']).toBe('acme');
    expect(handshake['x-gateway-context']).toMatch(/^eyJ/);
  });
});
