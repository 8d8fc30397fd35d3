# prometheus-adapter for the real node (the custom metrics API behind HPAs on requests per second):
# the static binary hack/controlplane.py builds from sigs.k8s.io/prometheus-adapter, staged by
# hack/images.py. Build context: the staged directory.
FROM scratch
COPY prometheus-adapter /adapter
USER 65534:65534
ENTRYPOINT ["/adapter"]
ARG VERSION=unknown
LABEL org.opencontainers.image.title="gameplane-prometheus-adapter" \
      org.opencontainers.image.description="prometheus-adapter built from its Go module" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/kubernetes-sigs/prometheus-adapter" \
      org.opencontainers.image.licenses="Apache-2.0"
