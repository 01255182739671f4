import { createServer } from 'node:http';

/** The benchmark's legacy service: small JSON for /api/v1/users/:id, nothing else. PORT from the environment. */
const server = createServer((request, response) => {
  const url = request.url ?? '/';
  if (url === '/health') {
    response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    return;
  }
  const match = /^\/api\/v1\/users\/([^/?]+)/.exec(url);
  if (!match) {
    response.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
    return;
  }
  const body = JSON.stringify({ id: match[1], name: `User ${match[1]}`, email: `user-${match[1]}@example.com`, active: true });
  response.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
