# One image for the api, the worker and the controller: the Helm chart picks the program
# with `command`. The last stage is the production image; `--target dev` is Tilt's.
# `npm run image:build` builds both without a registry, on a base image made locally with
# NODE_IMAGE; a build behind a TLS-intercepting proxy passes the proxy's CA as the secret
# `ca` and NODE_EXTRA_CA_CERTS=/run/secrets/ca (docs/kubernetes.md).

ARG NODE_IMAGE=node:24-slim

# Same steps as CI: `npm ci`, then `npm run build`.
FROM ${NODE_IMAGE} AS build
ARG NODE_EXTRA_CA_CERTS
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm --mount=type=secret,id=ca npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
# The web page's sources; the build writes the page to dist/web, which the api serves at `/`.
COPY web ./web
COPY scripts/build-web.ts ./scripts/
# Source maps point at files the image does not ship. The CA again: node warns when
# NODE_EXTRA_CA_CERTS names a missing file.
RUN --mount=type=secret,id=ca npm run build && find dist -name '*.map' -delete

FROM ${NODE_IMAGE} AS production-dependencies
ARG NODE_EXTRA_CA_CERTS
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm --mount=type=secret,id=ca \
    npm ci --omit=dev --no-audit --no-fund

# The inner loop: TypeScript sources run directly by node (--inspect, --watch), owned by
# the runtime user so that Tilt can sync files and rerun `npm ci --omit=dev` in place.
# Production dependencies only: node runs the sources without a compiler, and the dev
# tools (helm, biome, a second node) serve the checks on the developer's machine.
FROM ${NODE_IMAGE} AS dev
ARG NODE_EXTRA_CA_CERTS
WORKDIR /app
# npm's cache is the runtime user's too: `npm ci` in the pod writes to it.
RUN mkdir -p /home/node/.npm && chown 1000:1000 /app /home/node/.npm
USER 1000:1000
COPY --chown=1000:1000 package.json package-lock.json ./
# The npm cache stays in the builder's cache mount, out of the image.
RUN --mount=type=cache,target=/home/node/.npm,uid=1000,gid=1000 \
    --mount=type=secret,id=ca,uid=1000 \
    npm ci --omit=dev --no-audit --no-fund
COPY --chown=1000:1000 tsconfig.json ./
COPY --chown=1000:1000 src ./src
# The api serves the built page from dist/web, beside src/, whether it runs src/ or dist/.
COPY --chown=1000:1000 --from=build /app/dist/web ./dist/web
ENV DEBUG_HOST=0.0.0.0
EXPOSE 3000 9464 9465 9229 9230 9231
# The api's debug script, run by node itself: as PID 1, npm would not pass SIGTERM on.
CMD ["node", "--inspect=0.0.0.0:9229", "--watch", "src/api/main.ts"]

FROM ${NODE_IMAGE} AS production
# The programs run with plain `node`; package managers are only attack surface here.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
      /opt/yarn-* /usr/local/bin/yarn /usr/local/bin/yarnpkg
ENV NODE_ENV=production
WORKDIR /app
# package.json stays: its "type": "module" tells node that dist/ is ES modules.
COPY package.json ./
COPY --from=production-dependencies /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Numeric, so that the kubelet can check runAsNonRoot without reading /etc/passwd.
USER 1000:1000
EXPOSE 3000 9464 9465
CMD ["node", "--max-semi-space-size=2", "--max-old-space-size=96", "--initial-old-space-size=48", "dist/api/main.js"]
