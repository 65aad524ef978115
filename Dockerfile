# phone-enrich as a container image: `docker build -t phone-enrich .`, then
# `docker run --rm -v "$PWD:/work" -w /work phone-enrich run job.toml`.
#
# Two stages. The build stage compiles the dependencies (polars, most of the time) in a layer
# of their own, from Cargo.toml and Cargo.lock alone with a stand-in source, so that a change to
# src/ rebuilds only this crate. The runtime is a slim Debian of the same release (the binary
# links its glibc) with the CA certificates, running as an unprivileged user; the binary is the
# entrypoint, so the container's arguments are its command line.
#
# A company CA: copy it into /usr/local/share/ca-certificates/ and run update-ca-certificates in
# an image built FROM this one, or mount it and set provider.ca_file (or SSL_CERT_FILE).
# Proxies: HTTPS_PROXY and NO_PROXY are read from the container's environment.
#
# Air-gapped builds can name local base images: --build-arg BUILD_IMAGE=... RUNTIME_IMAGE=...
# Behind a TLS-inspecting proxy, cargo in the build stage must trust the proxy's CA to reach
# crates.io: name a BUILD_IMAGE whose /etc/ssl/certs holds it (and pass HTTPS_PROXY with
# --build-arg when the proxy is not transparent).

ARG BUILD_IMAGE=docker.io/library/rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim

FROM ${BUILD_IMAGE} AS build
WORKDIR /build
# The dependencies, cached apart from the source: a stand-in library, binary and benchmark
# (the manifest names them) let `cargo build` compile every dependency now.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > benches/normalize.rs \
    && cargo build --release --locked \
    && rm -rf src benches target/release/phone-enrich* target/release/deps/phone_enrich* \
        target/release/deps/libphone_enrich* target/release/.fingerprint/phone-enrich-*
# The source itself (touched, so cargo never takes the stand-in's build for it).
COPY src src
COPY benches benches
RUN find src benches -type f -exec touch {} + \
    && cargo build --release --locked --bin phone-enrich \
    && cp target/release/phone-enrich /usr/local/bin/phone-enrich

FROM ${RUNTIME_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# An unprivileged user with a fixed uid (for volume permissions and runAsNonRoot), whose home
# is the working directory: job files, inputs, outputs and the state directory go there.
RUN groupadd --system --gid 10001 phone-enrich \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /work phone-enrich
COPY --from=build /usr/local/bin/phone-enrich /usr/local/bin/phone-enrich
USER 10001:10001
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/phone-enrich"]
CMD ["--help"]
