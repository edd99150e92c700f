# syntax=docker/dockerfile:1
#
# mcp-proxy: one container serving many MCP servers (stdio ones through npx and uvx, and remote ones)
# from one manifest. Decisions and their reasons: docs/decisions/0016-container-and-kubernetes.md.
#
#   docker build -t mcp-proxy .
#   docker run -p 8000:8000 -v "$PWD/conf:/etc/mcp-proxy:ro" -e MCP_PROXY_API_KEY mcp-proxy      # manifest
#   docker run -p 8000:8000 -e MCP_COMMAND=npx -e MCP_ARGS="-y @azure-devops/mcp contoso" mcp-proxy # one server
# The second has no access control (no manifest, so no auth:): only behind a gateway that authenticates.

# Node 24 is the LTS line supported longest (to April 2028); Node 22's ends in April 2027. The Debian
# release is named so that a new default release of the tag never changes python3 or git under us.
# Pin by digest in the release pipeline (Renovate or Dependabot keep digests current).
ARG NODE_IMAGE=node:24-trixie-slim
# uv and uvx as Astral publishes them: static binaries in an otherwise empty image, pinned by version.
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.8

FROM ${UV_IMAGE} AS uv

# Compiles TypeScript. Everything here, TypeScript included, stays behind.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No dependency needs an install script (the lock file has none); refusing them keeps a compromised
# package from running code at build time.
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY schema ./schema
COPY src ./src
RUN npm run build

# The runtime dependencies alone, installed apart so that the final image gets node_modules and nothing
# of npm's work (cache, logs) with it.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="mcp-proxy" \
      org.opencontainers.image.description="Serve many MCP servers over Streamable HTTP from one YAML manifest" \
      org.opencontainers.image.licenses="MIT"
# What the manifest's servers are launched with, besides the npx that comes with Node:
# - tini as PID 1: Node as PID 1 gets no default signal handling and reaps no orphans; tini forwards
#   SIGTERM to the proxy (which stops every child group itself) and reaps what children leave behind;
# - python3 for uvx: Debian's interpreter saves each pod a Python download on its first uvx start;
# - git for `uvx --from git+https://…` and `npx github:…`;
# - ca-certificates for git's, Python's and uv's TLS (Node brings its own store).
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini python3 git ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=uv /uv /uvx /usr/local/bin/

WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
# package.json makes dist/ ES modules and holds the version; schema/ is read at run time.
COPY package.json ./
COPY schema ./schema
# /etc/mcp-proxy is where the manifest is mounted (a directory, so that ConfigMap updates arrive).
# /cache holds HOME and the npx and uv caches: the only place the proxy and its children write, so that
# the root file system can be read-only. Kubernetes mounts an emptyDir over it; plain `docker run`
# gets this directory, owned by the runtime user.
RUN mkdir -p /etc/mcp-proxy /cache && chown 1000:1000 /cache

# HOST and PORT win over the manifest's listen: (flags > environment > manifest), so a manifest
# written for a laptop's 127.0.0.1 still serves here. HOME, npm_config_cache and UV_CACHE_DIR are in
# the base environment every child gets (src/upstream/environment.ts), so npx and uvx find /cache in
# manifest mode too. PYTHONUNBUFFERED keeps Python servers from holding replies back in single-server
# mode, where the child gets the whole environment (a manifest sets it per server). NODE_ENV is not set:
# the proxy does not read it, and single-server children would inherit it.
ENV HOST=0.0.0.0 \
    PORT=8000 \
    MCP_PROXY_CONFIG=/etc/mcp-proxy/mcp-proxy.yaml \
    HOME=/cache \
    npm_config_cache=/cache/npm \
    UV_CACHE_DIR=/cache/uv \
    PYTHONUNBUFFERED=1

# Numeric, so that Kubernetes can check runAsNonRoot against the image itself (it cannot resolve a
# name such as `node`, the base image's user with this id).
USER 1000:1000
EXPOSE 8000
# /healthz answers 503 until every eager server answered initialize or
# gave up (at most 120 s each, a first npx or uvx download included): hence the start period.
# No curl in a slim image; Node's fetch does the same.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5m --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# The node flags are the CLI's own, from its first line (decision 0021); a test holds them equal.
ENTRYPOINT ["/usr/bin/tini", "--", "node", "--max-semi-space-size=4", "/app/dist/src/cli.js"]
# No -c: with MCP_COMMAND or MCP_PROXY_URL set this is the gateway's per-adapter container
# (single-server mode); otherwise it serves $MCP_PROXY_CONFIG. `-c FILE` always means a manifest.
CMD ["serve"]
