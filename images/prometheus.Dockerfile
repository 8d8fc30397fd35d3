# Prometheus for the real node (it feeds prometheus-adapter in the cluster tier): Debian's own
# server binary (package prometheus, dynamically linked against glibc) on the locally made Debian
# base. Build context: the staged directory holding the binary.
ARG BASE_IMAGE=debian:stable-slim
FROM ${BASE_IMAGE}
COPY prometheus /usr/local/bin/prometheus
USER 65534:65534
WORKDIR /prometheus
ENTRYPOINT ["/usr/local/bin/prometheus"]
ARG VERSION=unknown
LABEL org.opencontainers.image.title="gameplane-prometheus" \
      org.opencontainers.image.description="Debian's Prometheus server on the gameplane base" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/prometheus/prometheus" \
      org.opencontainers.image.licenses="Apache-2.0"
