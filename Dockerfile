# One image for the gateway and the six reference services: the command picks (the gateway by default;
# `node dist/services/main.js <name>` for a service). Two stages: the build (every dependency, esbuild,
# the prebuilt Mesh artifacts, then the dev dependencies pruned), and the runtime: Node's LTS (26) slim
# image, production dependencies, compiled JavaScript and the files the gateway reads at start — no
# TypeScript toolchain, no tsx, no tests or benchmarks (.dockerignore).
FROM node:26-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY .meshrc.yaml ./
COPY schemas ./schemas
COPY shared ./shared
COPY gateway ./gateway
COPY services ./services
COPY scripts ./scripts
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:26-slim
LABEL org.opencontainers.image.title="tv-streaming-gateway" \
      org.opencontainers.image.description="API gateway for the TV streaming backend: GraphQL (Mesh, Apollo) and REST passthrough on one port; also runs the six reference services" \
      org.opencontainers.image.source="https://github.com/tv-streaming/gateway" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="UNLICENSED"
ENV NODE_ENV=production HOST=0.0.0.0 PORT=4000
WORKDIR /app
COPY package.json package-lock.json ./
COPY .meshrc.yaml ./
COPY schemas ./schemas
COPY gateway/src/graphql/contract/schema.graphql ./gateway/src/graphql/contract/schema.graphql
# The services' migrations, applied as they start.
COPY services/migrations ./services/migrations
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The image's own `node` user, by number: Kubernetes' runAsNonRoot can only verify a numeric user.
USER 1000:1000
EXPOSE 4000
# The gateway drains on SIGTERM (SHUTDOWN_DRAIN_MS, then SHUTDOWN_GRACE_MS): give it that long to stop.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["node", "dist/scripts/healthcheck.js"]
# The gateway's Node flags (shared/node-flags.ts): its heap sized for the container, so that it does not keep
# the garbage of a load resident once the load is over (docs/operations.md#memory).
CMD ["node", "--max-old-space-size=256", "dist/gateway/src/main.js"]
