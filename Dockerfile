# syntax=docker/dockerfile:1
# One image for every service: `tracery serve --service capture` and so on (see k8s/).
# Build: docker build -t ghcr.io/tracery/tracery:0.1.0 .

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# protox compiles the protos, so no protoc is installed; the cache mounts keep rebuilds
# incremental.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p tracery \
    && cp target/release/tracery /tracery \
    && mkdir /data

# glibc, CA certificates and nothing else; no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /tracery /usr/local/bin/tracery
# The embedded default keeps its SQLite store under ./tracery-data.
COPY --from=build --chown=10001:10001 /data /data
WORKDIR /data
USER 10001:10001
EXPOSE 50051 8080 8081
ENTRYPOINT ["/usr/local/bin/tracery"]
CMD ["serve", "--listen", "127.0.0.1:50051"]
