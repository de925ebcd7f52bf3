# helpgate's container image: built from the sources, run from the build (dist/), as a user
# without privileges, with production dependencies only. Used by docker-compose.yml.
#   docker build -t helpgate .
# Node 22 LTS: the code also runs on Node 20.19+ (the test machines) and 24.

ARG NODE_IMAGE=node:22-bookworm-slim

# Compile TypeScript into dist/ (tsc is a dev dependency).
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Production dependencies only.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    HELPGATE_REQUIRE_BUILD=1 \
    HELPGATE_DATA_DIR=/var/lib/helpgate \
    SMTP_HOST=0.0.0.0 \
    SMTP_PORT=2525 \
    HTTP_HOST=0.0.0.0 \
    HTTP_PORT=3000
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY src/cli/helpgate.mjs ./src/cli/helpgate.mjs
COPY src/config/*.yaml ./src/config/
COPY templates ./templates
COPY web ./web
# The official image's "node" user (uid 1000).
RUN mkdir -p /var/lib/helpgate && chown 1000:1000 /var/lib/helpgate
USER 1000:1000
EXPOSE 2525 3000
# Alive: the portal answers /healthz (readiness, /readyz, is for the load balancer).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.HTTP_PORT || 3000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "src/cli/helpgate.mjs"]
CMD ["serve"]
