import { buildLegacyRestService } from './app.js';

/** Runs the demo legacy REST service on its own (as docker-compose does). */
const app = buildLegacyRestService();
await app.listen({ port: Number(process.env.PORT ?? 4010), host: process.env.HOST ?? '0.0.0.0' });
const stop = () => void app.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
