# syntax=docker/dockerfile:1
# silentdrop container images (docs/containers.md). Two targets:
#   collector  `silentdrop collector`: port 8080, data (admin token, hash key, or the
#              embedded database) in /var/lib/silentdrop
#   probe      `silentdrop probe --config /etc/silentdrop/probe.yaml`, with Debian's
#              chromium for the browser adapter; state in /var/lib/silentdrop
# Both run the compiled package (dist/) with its production dependencies only, as the
# unprivileged `node` user.
#   docker build --target collector -t silentdrop-collector .
#   docker build --target probe -t silentdrop-probe .
ARG NODE_IMAGE=node:20-bookworm-slim

# Compile the TypeScript and build the dashboard (`npm run build` writes dist/).
FROM ${NODE_IMAGE} AS build
WORKDIR /src
ENV PUPPETEER_SKIP_DOWNLOAD=1
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY . .
RUN npm run build

# Production dependencies of a collector: everything but the dev tools (the optional
# peer @electric-sql/pglite stays: the embedded database when DATABASE_URL is unset).
FROM ${NODE_IMAGE} AS collector-deps
WORKDIR /app
ENV PUPPETEER_SKIP_DOWNLOAD=1
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts && npm cache clean --force

# Production dependencies of a probe: no embedded database, no bundled browser download.
FROM ${NODE_IMAGE} AS probe-deps
WORKDIR /app
ENV PUPPETEER_SKIP_DOWNLOAD=1
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --no-audit --no-fund --ignore-scripts && npm cache clean --force

FROM ${NODE_IMAGE} AS collector
ENV NODE_ENV=production \
    SILENTDROP_DATA=/var/lib/silentdrop \
    HOST=0.0.0.0 \
    PORT=8080
WORKDIR /app
COPY package.json LICENSE README.md ./
COPY bin/silentdrop.js ./bin/silentdrop.js
COPY --from=collector-deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
RUN ln -s /app/bin/silentdrop.js /usr/local/bin/silentdrop \
 && mkdir -p /var/lib/silentdrop \
 && chown node:node /var/lib/silentdrop
USER node
VOLUME ["/var/lib/silentdrop"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["silentdrop"]
CMD ["collector"]

FROM ${NODE_IMAGE} AS probe
RUN apt-get update \
 && apt-get install -y --no-install-recommends chromium fonts-noto-cjk ca-certificates \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    PUPPETEER_SKIP_DOWNLOAD=1 \
    PUPPETEER_EXECUTABLE_PATH=/usr/bin/chromium \
    SILENTDROP_CHROMIUM=/usr/bin/chromium
WORKDIR /app
COPY package.json LICENSE README.md probe.example.yaml ./
COPY bin/silentdrop.js ./bin/silentdrop.js
COPY --from=probe-deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
RUN ln -s /app/bin/silentdrop.js /usr/local/bin/silentdrop \
 && mkdir -p /var/lib/silentdrop /etc/silentdrop \
 && chown node:node /var/lib/silentdrop
USER node
VOLUME ["/var/lib/silentdrop"]
# Healthy while the probe checks in: it rewrites clock.json in its data_dir at every
# successful check-in (every minute by default). The config must say
# `data_dir: /var/lib/silentdrop`.
HEALTHCHECK --interval=60s --timeout=5s --start-period=120s --retries=3 \
  CMD ["node", "-e", "const s=require('node:fs').statSync('/var/lib/silentdrop/clock.json');process.exit(Date.now()-s.mtimeMs<600000?0:1)"]
ENTRYPOINT ["silentdrop"]
CMD ["probe", "--config", "/etc/silentdrop/probe.yaml"]
