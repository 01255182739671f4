import httpProxy from '@fastify/http-proxy';
import Fastify from 'fastify';

/** The baseline: @fastify/http-proxy with its defaults and no pipeline. UPSTREAM and PORT from the environment. */
const app = Fastify({ logger: false });
await app.register(httpProxy, { upstream: process.env.UPSTREAM!, prefix: '/api/v1/users', rewritePrefix: '/api/v1/users' });
app.get('/ready', async () => ({ ok: true }));
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
