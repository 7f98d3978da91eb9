# syntax=docker/dockerfile:1
#
# messaging-exporter: a small image that runs as a non-root user.
#
#   docker build -t messaging-exporter .
#   docker run -d -p 10053:10053 \
#     -v "$PWD/config.yaml:/etc/messaging-exporter/config.yaml:ro" messaging-exporter
#
# The config is read from /etc/messaging-exporter/config.yaml (the shipped config.yaml is
# baked in there with signal-roots.pem, which it names; mount your own over it). Optional files go next to it and are named by
# flags appended to the command, e.g. `--web.config.file=/etc/messaging-exporter/web.yml`
# (TLS and basic auth, docs/web-config.md).
#
# Capabilities: none for the default networks. A network with `interface:` binds its sockets
# with SO_BINDTODEVICE, which needs CAP_NET_RAW before Linux 5.7; a network with `netns:`
# enters a Linux network namespace, which needs CAP_SYS_ADMIN (`--cap-add SYS_ADMIN`, and the
# namespace mounted into the container, e.g. `-v /run/netns:/run/netns:ro`). As the process
# runs as a non-root user, such capabilities only reach it as ambient capabilities: run it with
# `--user 0` and the capability when you need them, or use the systemd unit
# (deploy/systemd/) which grants exactly those. See docs/deployment.md.
#
# tests/test_packaging.py runs the same steps as this build without a container engine (a
# wheel, a clean venv, the entrypoint started, /metrics and /-/healthy scraped) and lints this
# file with hadolint.

# Debian 13's OpenSSL 3.5 under Python 3.13: ~10 % less CPU on the probe path than Python
# 3.11 on Debian 12's OpenSSL 3.0, the same code (docs/benchmarks.md, "Closing the gap").
ARG PYTHON_IMAGE=python:3.13-slim-trixie

# ---- build: the wheel, installed into a venv that the final stage copies as is
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && python -m venv /opt/exporter \
    && /opt/exporter/bin/pip install --no-cache-dir /wheels/messaging_exporter-*.whl \
    && /opt/exporter/bin/pip uninstall --yes pip \
    && find /opt/exporter -name '__pycache__' -prune -exec rm -rf {} +

# ---- final: the venv, the config, a non-root user
FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="messaging-exporter" \
      org.opencontainers.image.description="Prometheus exporter that measures whether messaging services are reachable, through every resolver and network, and tells censorship from outages" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.documentation="README.md"
RUN useradd --system --uid 10053 --user-group --no-create-home --shell /usr/sbin/nologin exporter
COPY --from=build /opt/exporter /opt/exporter
COPY config.yaml /etc/messaging-exporter/config.yaml
# Signal's root CAs, which config.yaml names (relative to itself) for the signal endpoints.
COPY signal-roots.pem /etc/messaging-exporter/signal-roots.pem
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 10053:10053
EXPOSE 10053
# /-/healthy on the default listen address over plain HTTP. With --web.config.file (TLS or
# basic auth) or another port, override it (`docker run --health-cmd ...`) or disable it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/opt/exporter/bin/python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:10053/-/healthy', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["/opt/exporter/bin/messaging-exporter"]
CMD ["--config.file=/etc/messaging-exporter/config.yaml", "--web.listen-address=:10053"]
