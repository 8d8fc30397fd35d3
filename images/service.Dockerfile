# The service image: every built gameplane service and simulator; the container's argument (or
# GP_SERVICE) picks one:  docker run gameplane/gameplane:0.1.0 gateway
#
# Build context: the repository root. `make images` (hack/images.py) builds it on a Debian base made
# locally with debootstrap; elsewhere the public Python image below is the default base:
#   docker build -f images/service.Dockerfile -t gameplane/gameplane:0.1.0 .
# The base needs python3 with venv/ensurepip, a POSIX shell and useradd (apt-get, if present, adds
# binutils to the build stage). Only a BuildKit builder reads this file (RUN --mount).
ARG BASE_IMAGE=python:3.11-slim-bookworm

# The dependency lists alone, so that the layers installing them are keyed on nothing else.
FROM ${BASE_IMAGE} AS requirements
COPY images/requirements.py pyproject.toml /src/
RUN python3 /src/requirements.py /src/pyproject.toml > /requirements.txt \
 && python3 /src/requirements.py /src/pyproject.toml --build > /build-requirements.txt

FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PYTHONDONTWRITEBYTECODE=1
# binutils strips the extension modules (prune.sh); only this stage has it. Skipped on a base
# without apt: the image is then just larger.
RUN if command -v apt-get >/dev/null; then \
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends binutils \
      && rm -rf /var/lib/apt/lists/*; \
    fi
# The optional `ca` secret is a CA bundle for builders behind a TLS-inspecting proxy (hack/images.py
# passes the host's); the pip cache survives in the builder between dependency changes.
# /opt/build holds the packaging tools (setuptools, wheel), which never reach the runtime venv.
COPY --from=requirements /build-requirements.txt /tmp/
RUN --mount=type=secret,id=ca,required=false --mount=type=cache,id=gameplane-pip,target=/root/.cache/pip \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
 && python3 -m venv /opt/build && /opt/build/bin/pip install --quiet -r /tmp/build-requirements.txt
COPY --from=requirements /requirements.txt /tmp/
RUN --mount=type=secret,id=ca,required=false --mount=type=cache,id=gameplane-pip,target=/root/.cache/pip \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
 && python3 -m venv /opt/gameplane && /opt/gameplane/bin/pip install --quiet -r /tmp/requirements.txt
# The package itself, without dependencies: a source edit rebuilds from here on only. The CLI and
# the dev tooling (embedded Postgres/NATS, the in-process platform) never run in a pod: dropped.
COPY pyproject.toml README.md /src/
COPY services/ /src/services/
COPY images/prune.sh /tmp/prune.sh
RUN /opt/build/bin/pip wheel --quiet --no-deps --no-build-isolation --wheel-dir /tmp/wheels /src \
 && /opt/gameplane/bin/pip install --quiet --no-deps /tmp/wheels/gameplane-*.whl \
 && site=$(/opt/gameplane/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') \
 && rm -rf "$site/gameplane/cli" "$site/gameplane/devtools" /opt/gameplane/bin/gameplane /opt/gameplane/bin/gameplane-operator \
 && sh /tmp/prune.sh /opt/gameplane gameplane

FROM ${BASE_IMAGE}
# A numeric user with a passwd entry (libraries that look the user up find one); HOME is /tmp, the
# only writable path when the root filesystem is read-only.
RUN groupadd --gid 10001 gameplane \
 && useradd --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin gameplane
COPY --from=build /opt/gameplane /opt/gameplane
# PYTHONSAFEPATH: `python -m` does not put the working directory on sys.path (PYTHONPATH still counts,
# which the dev reload setup relies on).
ENV PATH=/opt/gameplane/bin:$PATH HOME=/tmp PYTHONUNBUFFERED=1 PYTHONSAFEPATH=1
USER 10001:10001
EXPOSE 8000
# No init in front: the launcher handles SIGTERM itself (a chart's `command` would bypass an
# ENTRYPOINT init anyway) and waits for the one child that --reload starts.
ENTRYPOINT ["python", "-m", "gameplane"]

ARG BASE_IMAGE
ARG VERSION=unknown
ARG REVISION=unknown
LABEL org.opencontainers.image.title="gameplane" \
      org.opencontainers.image.description="gameplane services and simulators; the argument or GP_SERVICE picks one" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/gameplane/gameplane" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
