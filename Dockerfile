# syntax=docker/dockerfile:1
# One container serving many MCP servers: build with tsc, run on a slim Node LTS image.

FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json ./
COPY src ./src
COPY test ./test
COPY schema ./schema
RUN npm run build

FROM node:24-slim
# tini is PID 1: it forwards SIGTERM to the proxy and reaps orphans, so children never outlive a stop.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini ca-certificates git \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
COPY --from=build /app/dist/src ./dist/src
COPY schema ./schema

ENV MCP_PROXY_CONFIG=/etc/mcp-proxy/mcp-proxy.yaml \
    HOST=0.0.0.0 \
    PORT=8000
USER node
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/dist/src/cli.js"]
CMD ["serve"]
