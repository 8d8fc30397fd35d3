# CoreDNS for the real node (the cluster DNS, as a Pod like in any cluster, so NetworkPolicies that
# admit DNS by the usual kube-system/k8s-app=kube-dns selector are tested as written): the static
# binary hack/controlplane.py builds from github.com/coredns/coredns, staged by hack/images.py.
# Build context: the staged directory.
FROM scratch
COPY coredns /coredns
USER 65534:65534
ENTRYPOINT ["/coredns"]
ARG VERSION=unknown
LABEL org.opencontainers.image.title="gameplane-coredns" \
      org.opencontainers.image.description="CoreDNS built from its Go module with the plugins a cluster DNS needs" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/coredns/coredns" \
      org.opencontainers.image.licenses="Apache-2.0"
