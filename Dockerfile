# syntax=docker/dockerfile:1
# One image for the api, the worker and the controller: the Helm chart picks the program
# with `command`. The last stage is the production image; `--target dev` is Tilt's.

ARG NODE_IMAGE=node:24-slim

# Same steps as CI: `npm ci`, then `npm run build`.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci
COPY tsconfig.json ./
COPY src ./src
# Source maps point at files the image does not ship.
RUN npm run build && find dist -name '*.map' -delete

FROM ${NODE_IMAGE} AS production-dependencies
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev

# The inner loop: TypeScript sources run directly by the debug scripts (--inspect, --watch),
# owned by the runtime user so that Tilt can sync files and rerun `npm ci` in place.
FROM ${NODE_IMAGE} AS dev
WORKDIR /app
RUN chown 1000:1000 /app
USER 1000:1000
COPY --chown=1000:1000 package.json package-lock.json ./
RUN npm ci
COPY --chown=1000:1000 tsconfig.json ./
COPY --chown=1000:1000 src ./src
ENV DEBUG_HOST=0.0.0.0
EXPOSE 3000 9464 9465 9229 9230 9231
CMD ["npm", "run", "start:debug:api"]

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
CMD ["node", "--max-semi-space-size=2", "--max-old-space-size=96", "dist/api/main.js"]
