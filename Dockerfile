# One image for the gateway and the reference services; compose picks the command. Two stages: the
# build (all dependencies, esbuild, the Mesh artifacts), then only what runs: production dependencies,
# dist/, and the files the gateway reads at start (.meshrc.yaml, the specs, the contract schema).
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY .meshrc.yaml ./
COPY schemas ./schemas
COPY gateway ./gateway
COPY services ./services
COPY mesh ./mesh
COPY scripts ./scripts
RUN npm run build

FROM node:24-bookworm-slim
ENV NODE_ENV=production HOST=0.0.0.0
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY .meshrc.yaml ./
COPY schemas ./schemas
COPY mesh/schema.graphql ./mesh/schema.graphql
COPY --from=build /app/dist ./dist
USER node
EXPOSE 4000
CMD ["node", "dist/gateway/src/main.js"]
