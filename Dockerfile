# syntax=docker/dockerfile:1.7
# The one LogStream image: every role (`standalone`, `ingest`, `processor`, `query`, `agent`,
# `operator`, `crd`) is a subcommand of the same binary, so the operator runs this image with
# `args: [<role>, --config=...]` and the chart runs it with `args: [operator]`.
#
# Invariants the operator and the Helm chart rely on (checked by logstream/tests/dockerfile.rs):
# the binary is /usr/local/bin/logstream, ENTRYPOINT is ["logstream"], the user is 10001:10001
# (operator/src/build/workloads.rs RUN_AS_USER), and RUST_VERSION equals rust-toolchain.toml's
# channel. The image writes nothing outside mounted volumes, so it runs with
# readOnlyRootFilesystem: HOME and TMPDIR point at /tmp, which the operator mounts as an emptyDir.
#
# Build:  docker build -t logstream:dev .
#         (BuildKit is needed for the cache mounts; VERSION/REVISION fill the OCI labels.)

ARG RUST_VERSION=1.95.0

FROM docker.io/library/rust:${RUST_VERSION}-slim-bookworm AS builder
# The bundled librdkafka (rdkafka's `cmake-build`) needs cmake and a C/C++ compiler, and its
# cmake build includes <curl/curl.h> even with curl disabled; pkg-config finds the headers.
# Versions are not pinned (DL3008): bookworm's point releases replace them, and the Rust
# toolchain, not these tools, decides what the binary is.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      cmake g++ make pkg-config libcurl4-openssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# zlib is built from libz-sys's sources and linked statically, so the runtime image needs no
# libz.so (distroless cc has glibc, libgcc and CA certificates, not zlib).
ENV LIBZ_SYS_STATIC=1 \
    CARGO_TERM_COLOR=never
# The target folder lives in a cache mount, so the binary is copied out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p logstream \
 && install -D -m 0755 target/release/logstream /out/logstream

# Runtime: distroless cc (glibc, libgcc_s, CA certificates, tzdata; no shell, no package
# manager). The binary links only glibc, libm and libgcc_s dynamically. The `nonroot` tag's
# user (65532) is replaced by 10001 below.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="logstream" \
      org.opencontainers.image.description="LogStream: a Kubernetes-native log platform (operator, agent, ingest, processor, query in one binary)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/logstream/logstream" \
      org.opencontainers.image.vendor="LogStream"
COPY --from=builder --chown=0:0 /out/logstream /usr/local/bin/logstream
# Nothing is written to the root filesystem: temp files and anything keyed on HOME go to /tmp
# (an emptyDir in the operator's pods); state lives in /var/lib/logstream (the embedded
# install's volume claim), which is also where `./data` of a bare `standalone` lands.
ENV PATH=/usr/local/bin:/usr/bin:/bin \
    HOME=/tmp \
    TMPDIR=/tmp
WORKDIR /var/lib/logstream
USER 10001:10001
# 3100 standalone/ingest, 3101 processor, 3102 query, 3103 agent, 8080 operator.
EXPOSE 3100 3101 3102 3103 8080
ENTRYPOINT ["logstream"]
CMD ["--help"]
