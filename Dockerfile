# Multi-stage build: one small runtime image holding ingest, the console, worker and the sandbox.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin ingest --bin console --bin worker --bin sandbox \
 && mkdir -p /out && cp target/release/ingest target/release/console target/release/worker target/release/sandbox /out/

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 connector
COPY --from=build /out/ /usr/local/bin/
COPY examples/ /examples/
USER connector
EXPOSE 8080 8090
CMD ["ingest"]
