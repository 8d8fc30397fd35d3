#!/bin/sh
# gameplane's development PostgreSQL: the part of the official postgres image's contract the charts
# rely on, for an image built from Debian packages.
#   POSTGRES_PASSWORD (required on first start), POSTGRES_USER (postgres), POSTGRES_DB ($POSTGRES_USER),
#   PGDATA, PGPORT (5432); /docker-entrypoint-initdb.d/*.sql and *.sh run once, on first start;
#   clients authenticate with their password (scram-sha-256) over TCP on every address.
# Runs as any user with a passwd entry (70 in the charts); writes only to $PGDATA,
# /var/run/postgresql and /tmp, so the root filesystem may be read-only.
set -eu

# `docker run IMAGE -c shared_buffers=64MB` means postgres with those options; any other command runs as is.
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
  set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
  exec "$@"
fi
shift

: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "docker-entrypoint: POSTGRES_PASSWORD must be set to initialise $PGDATA" >&2
    exit 1
  fi
  mkdir -p "$PGDATA"
  chmod 700 "$PGDATA"
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 ${POSTGRES_INITDB_ARGS:-}
  rm -f "$pwfile"
  printf "listen_addresses = '*'\n" >> "$PGDATA/postgresql.conf"
  printf 'host all all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"

  # The init scripts run against a server reachable only through its socket.
  pg_ctl --wait --silent --options="-c listen_addresses=''" start
  if [ "$POSTGRES_DB" != postgres ]; then
    psql -v ON_ERROR_STOP=1 --username="$POSTGRES_USER" --dbname=postgres --no-psqlrc --quiet \
      --set db="$POSTGRES_DB" <<'SQL'
CREATE DATABASE :"db";
SQL
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sql) echo "docker-entrypoint: running $f"
             psql -v ON_ERROR_STOP=1 --username="$POSTGRES_USER" --dbname="$POSTGRES_DB" --no-psqlrc -f "$f" ;;
      *.sh)  echo "docker-entrypoint: sourcing $f"
             . "$f" ;;
      *)     if [ -e "$f" ]; then echo "docker-entrypoint: ignoring $f"; fi ;;
    esac
  done
  pg_ctl --wait --silent --mode=fast stop
  echo "docker-entrypoint: initialised $PGDATA"
fi

exec postgres "$@"
