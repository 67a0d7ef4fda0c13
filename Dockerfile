# syntax=docker/dockerfile:1
# zoom-qss-exporter: build a wheel in one stage, install only the wheels in a slim final stage
# that runs as a non-root user on a read-only root filesystem (what the Helm chart expects:
# uid/gid 65532, port 9981, entrypoint zoom-qss-exporter, command serve).
#
#   docker build -t zoom-qss-exporter:0.1.0 .
#   docker run --rm -p 9981:9981 -e ZOOM_WEBHOOK_SECRET_TOKEN=<token> zoom-qss-exporter:0.1.0

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY exporter/ exporter/
# The exporter's wheel and the wheels of everything it depends on, at the versions CI tested.
RUN pip wheel --wheel-dir /wheels --constraint constraints.txt .

FROM ${PYTHON_IMAGE}
ARG PYTHON_IMAGE
ARG VERSION=0.1.0
ARG REVISION=""
ARG CREATED=""
LABEL org.opencontainers.image.title="zoom-qss-exporter" \
      org.opencontainers.image.description="Prometheus exporter for Zoom QSS (Quality of Service Subscription) webhooks" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
# Only the wheels, from the build stage, without an index; no compiler or build backend here.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels zoom-qss-exporter \
    && pip uninstall --yes setuptools wheel \
    && groupadd --system --gid 65532 exporter \
    && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin exporter \
    && install -d -o 65532 -g 65532 -m 0700 /var/lib/zoom-qss-exporter
# The working directory holds remote write's write-ahead log by default (data/remote-write, as
# Prometheus keeps data/ in its working directory): writable by the user, and a volume, so a
# plain `docker run` with --remote-write.url works and keeps the log across container restarts.
WORKDIR /var/lib/zoom-qss-exporter
VOLUME /var/lib/zoom-qss-exporter
USER 65532:65532
EXPOSE 9981
ENTRYPOINT ["zoom-qss-exporter"]
CMD ["serve"]
