import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';

const require = createRequire(import.meta.url);

/** GraphiQL and React from their npm packages, read once: the IDE works with no network at all. */
const ASSETS: Record<string, { file: string; type: string }> = {
  'react.js': { file: 'react/umd/react.production.min.js', type: 'text/javascript' },
  'react-dom.js': { file: 'react-dom/umd/react-dom.production.min.js', type: 'text/javascript' },
  'graphiql.js': { file: 'graphiql/graphiql.min.js', type: 'text/javascript' },
  'graphiql.css': { file: 'graphiql/graphiql.min.css', type: 'text/css' },
};

const PAGE = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>GraphQL IDE · federated-gateway</title>
    <link rel="stylesheet" href="/graphql/ide/graphiql.css" />
    <style>body { margin: 0; height: 100vh; } #graphiql { height: 100vh; }</style>
  </head>
  <body>
    <div id="graphiql">Loading…</div>
    <script src="/graphql/ide/react.js"></script>
    <script src="/graphql/ide/react-dom.js"></script>
    <script src="/graphql/ide/graphiql.js"></script>
    <script>
      // Tokens go in the Headers tab ({"authorization": "Bearer …"}); GraphiQL keeps them in localStorage.
      const fetcher = GraphiQL.createFetcher({ url: '/graphql', headers: { 'apollo-require-preflight': 'true' } });
      ReactDOM.createRoot(document.getElementById('graphiql')).render(
        React.createElement(GraphiQL, { fetcher, isHeadersEditorEnabled: true, defaultEditorToolsVisibility: 'headers' }),
      );
    </script>
  </body>
</html>`;

/** `react/umd/…` through the package root: export maps hide the UMD builds from `require.resolve`. */
function packageFile(path: string): string {
  const [name, ...rest] = path.split('/');
  return join(dirname(require.resolve(`${name}/package.json`)), ...rest);
}

/** A browser opening /graphql (HTML wanted, no operation in the URL) gets the IDE instead. */
export function isIdeRequest(request: FastifyRequest): boolean {
  return (
    request.method === 'GET' &&
    (request.headers.accept ?? '').includes('text/html') &&
    !(request.query as { query?: unknown } | undefined)?.query
  );
}

/** Development only (or GRAPHQL_IDE=true): GraphiQL served from local packages, no CDN. */
export function registerGraphQLIde(app: FastifyInstance): () => string {
  const assets = new Map(
    Object.entries(ASSETS).map(([name, { file, type }]) => [name, { body: readFileSync(packageFile(file)), type }]),
  );
  app.get<{ Params: { asset: string } }>('/graphql/ide/:asset', async (request, reply) => {
    const asset = assets.get(request.params.asset);
    if (!asset) return reply.callNotFound();
    return reply.type(asset.type).header('cache-control', 'public, max-age=86400').send(asset.body);
  });
  return () => PAGE;
}
