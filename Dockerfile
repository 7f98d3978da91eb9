# syntax=docker/dockerfile:1
# Build a wheel in a throw-away stage, install it into a clean venv in the final image.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN python -m venv /opt/exporter \
    && useradd --system --uid 10053 --no-create-home exporter
COPY --from=build /wheels /wheels
RUN /opt/exporter/bin/pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY config.yaml /etc/messaging-exporter/config.yaml
USER exporter
EXPOSE 10053
# Binding to an interface (networks with `interface:`) needs CAP_NET_RAW; entering a network
# namespace (`netns:`) needs CAP_SYS_ADMIN. Add them with `--cap-add` only if you use them.
HEALTHCHECK --interval=30s --timeout=5s CMD ["/opt/exporter/bin/python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:10053/-/healthy', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["/opt/exporter/bin/messaging-exporter"]
CMD ["--config.file=/etc/messaging-exporter/config.yaml"]
