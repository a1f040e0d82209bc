# Multi-stage build. The default target, `runtime`, is the production image:
# ingest, the console and worker only, no test code (the packages are named,
# so neither are the test crates' features resolved in). `--target sandbox`
# is the image of the fake HubSpot and impact.com (docker-compose.yml's
# sandbox profile); BuildKit builds only the stages the chosen target needs.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p ingest -p console -p worker \
      --bin ingest --bin console --bin worker \
 && mkdir -p /out && cp target/release/ingest target/release/console target/release/worker /out/

FROM rust:1-bookworm AS sandbox-build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p sandbox --bin sandbox \
 && mkdir -p /out && cp target/release/sandbox /out/

FROM debian:bookworm-slim AS base
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 connector

FROM base AS sandbox
COPY --from=sandbox-build /out/ /usr/local/bin/
USER connector
EXPOSE 8081 8082
CMD ["sandbox", "--hubspot-addr", "0.0.0.0:8081", "--impact-addr", "0.0.0.0:8082"]

FROM base AS runtime
COPY --from=build /out/ /usr/local/bin/
COPY examples/ /examples/
USER connector
EXPOSE 8080 8090
CMD ["ingest"]
