import { buildLegacyRestService } from './app.js';

/**
 * Runs the demo legacy REST service on its own (as docker-compose does), on PORT (4010) and on
 * 127.0.0.1 unless HOST says otherwise (docker-compose sets HOST=0.0.0.0).
 */
const app = buildLegacyRestService();
const port = Number(process.env.PORT || 4010);
const host = process.env.HOST || '127.0.0.1';
await app.listen({ port, host }).catch((error: unknown) => {
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== 'EADDRINUSE' && code !== 'EACCES' && code !== 'EADDRNOTAVAIL') throw error;
  // One line, no stack trace: the fix is a setting, not a bug.
  process.stderr.write(`legacy REST service: cannot listen on ${host}:${port} [${code}]; set PORT (or HOST)\n`);
  process.exit(69); // EX_UNAVAILABLE
});
const stop = () => void app.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
