# The operator image: gameplane-operator (kopf), the `helm` binary it renders with, and the charts
# at /charts (the operator's default chart is /charts/gameplane outside a source checkout).
#
# Build context: the repository root, with a Linux amd64 `helm` binary staged at .build/images/helm
# (`python hack/images.py stage` copies the one hack/controlplane.py builds from helm's Go module).
#   docker build -f images/operator.Dockerfile -t gameplane/operator:0.1.0 .
# Only a BuildKit builder reads this file (RUN --mount).
ARG BASE_IMAGE=python:3.11-slim-bookworm

# Exactly the `operator` extra of pyproject.toml, and nothing else from it.
FROM ${BASE_IMAGE} AS requirements
COPY images/requirements.py pyproject.toml /src/
RUN python3 /src/requirements.py /src/pyproject.toml operator > /requirements.txt \
 && python3 /src/requirements.py /src/pyproject.toml --build > /build-requirements.txt

FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PYTHONDONTWRITEBYTECODE=1
RUN if command -v apt-get >/dev/null; then \
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends binutils \
      && rm -rf /var/lib/apt/lists/*; \
    fi
COPY --from=requirements /build-requirements.txt /tmp/
RUN --mount=type=secret,id=ca,required=false --mount=type=cache,id=gameplane-pip,target=/root/.cache/pip \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
 && python3 -m venv /opt/build && /opt/build/bin/pip install --quiet -r /tmp/build-requirements.txt
# kubernetes/aio (~68 MB) is the client's optional asyncio twin: the operator uses the synchronous
# client and kopf its own aiohttp calls (tests/images checks that nothing imports it).
COPY --from=requirements /requirements.txt /tmp/
RUN --mount=type=secret,id=ca,required=false --mount=type=cache,id=gameplane-pip,target=/root/.cache/pip \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
 && python3 -m venv /opt/gameplane && /opt/gameplane/bin/pip install --quiet -r /tmp/requirements.txt \
 && rm -rf /opt/gameplane/lib/python3*/site-packages/kubernetes/aio
# The distribution without its dependencies: the operator imports only gameplane.catalog (standard
# library) from the services' side.
COPY pyproject.toml README.md /src/
COPY services/ /src/services/
COPY operator/ /src/operator/
COPY images/prune.sh /tmp/prune.sh
RUN /opt/build/bin/pip wheel --quiet --no-deps --no-build-isolation --wheel-dir /tmp/wheels /src \
 && /opt/gameplane/bin/pip install --quiet --no-deps /tmp/wheels/gameplane-*.whl \
 && rm -f /opt/gameplane/bin/gameplane \
 && sh /tmp/prune.sh /opt/gameplane gameplane gameplane_operator
# Charts with their links resolved: they link the service chart, dashboards, alert rules and the CRD.
COPY charts/ /src/charts/
COPY observability/ /src/observability/
COPY k8s/crds/ /src/k8s/crds/
RUN mkdir /charts && cp -RL /src/charts/gameplane /src/charts/gameplane-service /src/charts/gameplane-operator /charts/

FROM ${BASE_IMAGE}
RUN groupadd --gid 10001 gameplane \
 && useradd --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin gameplane
COPY .build/images/helm /usr/local/bin/helm
COPY --from=build /charts /charts
COPY --from=build /opt/gameplane /opt/gameplane
# HOME=/tmp: helm keeps its cache and config under $HOME, and /tmp is the writable path.
ENV PATH=/opt/gameplane/bin:$PATH HOME=/tmp PYTHONUNBUFFERED=1 PYTHONSAFEPATH=1 \
    GAMEPLANE_OPERATOR_CHART=/charts/gameplane GAMEPLANE_OPERATOR_HELM=/usr/local/bin/helm
USER 10001:10001
# kopf stops on SIGTERM by itself, also as PID 1 (the chart's `command` runs it directly).
ENTRYPOINT ["gameplane-operator"]

ARG BASE_IMAGE
ARG VERSION=unknown
ARG REVISION=unknown
LABEL org.opencontainers.image.title="gameplane-operator" \
      org.opencontainers.image.description="gameplane operator: GamingPlatform resources rendered with helm from the bundled charts" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/gameplane/gameplane" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
