# syntax=docker/dockerfile:1
# One image for the gateway, the demo subgraphs and the legacy REST demo service (docker-compose
# picks the command). `npm run check:docker` reproduces these stages without Docker.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
# Only what the image runs: tsconfig.build.json compiles src/, subgraphs/ and services/ (not the
# scripts/ dev tools, which import test helpers that are not in the build context).
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY subgraphs ./subgraphs
COPY services ./services
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    PORT=4000 \
    SUPERGRAPH_PATH=supergraph/supergraph.graphql
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY supergraph ./supergraph
USER node
EXPOSE 4000
# The gateway's readiness. The other commands of this image serve other paths: docker-compose.yml
# gives each service its own check in this same form (path as the argument).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+process.env.PORT+process.argv[1]).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))", "/health/ready"]
# A 32 MiB semi-space (young generation) instead of V8's 16 MiB: the gateway makes many short-lived
# objects per request, and fewer scavenges cut its CPU per GraphQL request (README, "Running the
# gateway alone"). Costs at most ~48 MiB more heap per process.
CMD ["node", "--max-semi-space-size=32", "dist/src/main.js"]
