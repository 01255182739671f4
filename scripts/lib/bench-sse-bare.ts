import { createServer, type ServerResponse } from 'node:http';
import { Redis } from 'ioredis';

/**
 * The baseline of `npm run bench:sse`: a bare `node:http` server that keeps open event-stream
 * responses in a Set and writes each frame once per client, fed by one blocking XREAD on STREAM_KEY
 * in REDIS_URL. No auth, no limits, no replay. PORT from the environment.
 */
const open = new Set<ServerResponse>();
const server = createServer((request, response) => {
  if (request.url === '/health') {
    response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    return;
  }
  response.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
  response.write('retry: 3000\n\n');
  open.add(response);
  response.once('close', () => open.delete(response));
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT), '127.0.0.1');

const key = process.env.STREAM_KEY!;
const redis = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: null });
let running = true;
void (async () => {
  let position = '$';
  while (running) {
    const result = (await redis.xread('BLOCK', 1000, 'STREAMS', key, position).catch(() => null)) as [string, [string, string[]][]][] | null;
    for (const [, entries] of result ?? []) {
      for (const [id, fields] of entries) {
        position = id;
        const frame = `id: ${id}\nevent: ${fields[1]}\ndata: ${fields[3]}\n\n`;
        for (const response of open) response.write(frame);
      }
    }
  }
})();

process.on('SIGTERM', () => {
  running = false;
  redis.disconnect();
  for (const response of open) response.end();
  server.close(() => process.exit(0));
});
