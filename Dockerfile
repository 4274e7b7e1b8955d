# One image for the gateway and the reference services; compose picks the command.
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# tsx runs the TypeScript sources; dev tools (vitest, eslint, the Mesh CLI) stay out of the image.
RUN npm ci --omit=dev && npm cache clean --force
COPY tsconfig.json .meshrc.yaml ./
COPY gateway ./gateway
COPY services ./services
COPY schemas ./schemas
COPY mesh ./mesh
USER node
EXPOSE 4000
CMD ["node", "--import", "tsx", "gateway/src/main.ts"]
