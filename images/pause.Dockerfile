# The pod sandbox ("pause") image of the real node: Kubernetes' own pause.c, compiled static by
# hack/images.py (as build/pause/Dockerfile of k8s.io/kubernetes does).
# Build context: the staged directory holding `pause`.
FROM scratch
COPY pause /pause
USER 65535:65535
ENTRYPOINT ["/pause"]
ARG VERSION=unknown
LABEL org.opencontainers.image.title="gameplane-pause" \
      org.opencontainers.image.description="Kubernetes pause container, built from k8s.io/kubernetes build/pause/linux/pause.c" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/kubernetes/kubernetes/tree/master/build/pause" \
      org.opencontainers.image.licenses="Apache-2.0"
