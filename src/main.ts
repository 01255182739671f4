import { buildGateway } from './app.js';
import { ConfigError, loadConfig } from './config/load.js';
import { configWarnings } from './config/warnings.js';

/** Process entry: load config → build → listen; SIGTERM/SIGINT → drain (bounded) → exit 0. */
async function main(): Promise<void> {
  let config;
  let gateway;
  try {
    config = loadConfig();
    gateway = await buildGateway(config);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }

  const { app } = gateway;
  for (const warning of configWarnings(config)) app.log.warn(warning);
  const address = await app.listen({ port: config.port, host: config.host });
  app.log.info({ address, graphql: `${address}/graphql` }, 'gateway listening');

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal, timeoutMs: config.shutdownTimeoutMs }, 'shutting down: draining in-flight requests');
    try {
      await gateway.shutdown();
      process.exit(0);
    } catch (error) {
      app.log.error({ err: error }, 'error during shutdown');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  process.stderr.write(`gateway failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
