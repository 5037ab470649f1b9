# syntax=docker/dockerfile:1
# Temporal CLI (dev server + Web UI) and MinIO, built from the same pinned Go modules as the local
# stack (tools/temporal, tools/minio; tools/build.sh), so both stacks run the same versions.
# Build context: the repository root (docker/tools.Dockerfile.dockerignore keeps it to tools/).
ARG GO_IMAGE=golang:1.25-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${GO_IMAGE} AS temporal-build
WORKDIR /src
COPY tools/temporal/ ./
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -buildvcs=false -trimpath -ldflags '-s -w' -o /out/temporal github.com/temporalio/cli/cmd/temporal

FROM ${GO_IMAGE} AS minio-build
WORKDIR /src
COPY tools/minio/ ./
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -buildvcs=false -trimpath -ldflags '-s -w' -o /out/minio github.com/minio/minio

FROM ${RUNTIME_IMAGE} AS temporal
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/temporal --create-home temporal
COPY --from=temporal-build /out/temporal /usr/local/bin/temporal
USER temporal
WORKDIR /var/lib/temporal
EXPOSE 7233 8233
ENTRYPOINT ["temporal"]
CMD ["server", "start-dev", "--ip", "0.0.0.0", "--port", "7233", "--ui-port", "8233", "--db-filename", "/var/lib/temporal/temporal.db"]

FROM ${RUNTIME_IMAGE} AS minio
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10002 --user-group --home-dir /data --create-home minio
COPY --from=minio-build /out/minio /usr/local/bin/minio
USER minio
EXPOSE 9000 9001
ENTRYPOINT ["minio"]
CMD ["server", "/data", "--address", ":9000", "--console-address", ":9001"]
