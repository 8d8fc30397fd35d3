# Development PostgreSQL for the dev charts and the images/cluster tests: Debian's postgresql
# packages on a rootfs made with debootstrap (hack/images.py), behaving like the official image
# where the charts need it (docker-entrypoint.sh). Never for production data.
# Build context: the repository root; ROOTFS is the imported debootstrap image.
ARG ROOTFS
FROM ${ROOTFS}
ARG PG_MAJOR=17
COPY images/dev-postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
# The server binaries first on PATH: /usr/bin/pg_isready etc. are Debian's wrappers.
ENV PATH=/usr/lib/postgresql/${PG_MAJOR}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 PGDATA=/var/lib/postgresql/data
# The official alpine image's postgres user, which the charts run as.
USER 70:70
EXPOSE 5432
# SIGINT is PostgreSQL's fast shutdown (SIGTERM waits for every client to disconnect).
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
ARG VERSION=unknown
LABEL org.opencontainers.image.title="gameplane-dev-postgres" \
      org.opencontainers.image.description="PostgreSQL ${PG_MAJOR} from Debian packages, for gameplane's development charts and tests only" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/gameplane/gameplane" \
      org.opencontainers.image.licenses="PostgreSQL"
