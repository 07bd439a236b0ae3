# syntax=docker/dockerfile:1
# One image for every service; the command picks one:
#   docker run aduan python -m services.ingest     (webhooks on ADUAN_HTTP_PORT, /metrics on ADUAN_METRICS_PORT)
#   docker run aduan python -m services.classify   (/metrics on ADUAN_METRICS_PORT)
#   docker run aduan python -m services.route      (/metrics on ADUAN_METRICS_PORT)
#   docker run aduan python -m services.desk       (API and page on ADUAN_HTTP_PORT, /metrics on ADUAN_METRICS_PORT)
#   docker run aduan python -m services.notify     (/metrics on ADUAN_METRICS_PORT)
#   docker run aduan python -m services.replay --help
# Multi-stage: compilers and pip caches stay in the build stage; the runtime stage holds the
# virtualenv, the deployment config and nothing else, and runs as an unprivileged user.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, from pyproject.toml alone, so code-only changes reuse this layer.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml','rb'))['project']['dependencies']))" > requirements.txt \
 && pip install -r requirements.txt
COPY common ./common
COPY schemas ./schemas
COPY services ./services
RUN pip install --no-deps . \
 && python -c "import common.settings, schemas, services.ingest.app, services.ingest.mentions, services.classify.processor, services.route.app, services.desk.service, services.notify.service"

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="aduan" \
      org.opencontainers.image.description="Social-media complaint streaming for Indonesian regional government" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 aduan \
 && useradd --system --uid 10001 --gid aduan --home-dir /app --shell /usr/sbin/nologin aduan
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# Default deployment config (registry, SLA policies); mount your own over /app/deploy/config
# or point ADUAN_REGISTRY_FILE / ADUAN_ROUTE_SLA_FILE elsewhere.
COPY --chown=aduan:aduan deploy/config ./deploy/config
# /app is writable by the service user: route's faust keeps its local state under it.
# /var/lib/aduan-route is route's data directory (ADUAN_ROUTE_DATA_DIR in compose and
# Kubernetes): created here so that a named volume mounted on it starts owned by the user.
RUN chown aduan:aduan /app \
 && install -d -o aduan -g aduan /var/lib/aduan-route
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ADUAN_HTTP_HOST=0.0.0.0 \
    ADUAN_HTTP_PORT=8080 \
    ADUAN_REGISTRY_FILE=/app/deploy/config/registry.yaml \
    ADUAN_ROUTE_SLA_FILE=/app/deploy/config/sla.yaml
USER 10001:10001
EXPOSE 8080 9101 9102
CMD ["python", "-m", "services.ingest"]
