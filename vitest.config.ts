import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';

const require = createRequire(import.meta.url);

export default defineConfig({
  resolve: {
    // Node resolves `graphql` to its CommonJS build (no "exports" map); Vite would pick the ESM build
    // and the Apollo packages (CommonJS) would then see two copies of graphql-js. Match Node.
    alias: [{ find: /^graphql$/, replacement: require.resolve('graphql') }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    // System prerequisites (redis-server, Chromium) and the suite's own redis-server on a free port.
    globalSetup: ['test/setup/global.ts'],
    // Ceilings, not delays: conditions are awaited with test/helpers/deadlines.ts; these only stop a
    // test that hangs, with room for several such waits on a loaded machine.
    testTimeout: 180_000,
    hookTimeout: 180_000,
    teardownTimeout: 60_000,
    pool: 'forks',
  },
});
