# metrics-server for the real node (HPAs on real CPU): the static binary hack/controlplane.py builds
# from sigs.k8s.io/metrics-server, staged by hack/images.py. Build context: the staged directory.
FROM scratch
COPY metrics-server /metrics-server
USER 65534:65534
ENTRYPOINT ["/metrics-server"]
ARG VERSION=unknown
LABEL org.opencontainers.image.title="gameplane-metrics-server" \
      org.opencontainers.image.description="metrics-server built from its Go module" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/kubernetes-sigs/metrics-server" \
      org.opencontainers.image.licenses="Apache-2.0"
