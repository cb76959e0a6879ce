# syntax=docker/dockerfile:1
# whmcs-ticket-exporter: Prometheus exporter for the WHMCS support desk.
#   docker build -t whmcs-ticket-exporter .
#   docker run --rm -p 9720:9720 whmcs-ticket-exporter --demo
# tests/test_deploy_static.py replays the COPY and pip steps below in a fresh venv: keep the
# install steps to plain `pip wheel` / `pip install` commands.

# ---- builder: build the wheel from pyproject.toml ---------------------------------------------
FROM python:3.11-slim AS builder
WORKDIR /src
COPY pyproject.toml README.md* LICENSE* ./
COPY exporter ./exporter
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

# ---- runtime ------------------------------------------------------------------------------------
FROM python:3.11-slim
LABEL org.opencontainers.image.title="whmcs-ticket-exporter" \
      org.opencontainers.image.description="Prometheus exporter for the WHMCS support desk" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=builder /dist /dist
RUN pip install --no-cache-dir /dist/*.whl \
    && rm -rf /dist \
    && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin whmcs-exporter \
    && mkdir -p /var/lib/whmcs-ticket-exporter \
    && chown 10001:10001 /var/lib/whmcs-ticket-exporter \
    && chmod 0700 /var/lib/whmcs-ticket-exporter
# State that survives restarts (docs/state.md): --storage.path defaults to data/ under the working
# directory, so it lands in this volume, writable by the exporter's user.
WORKDIR /var/lib/whmcs-ticket-exporter
VOLUME ["/var/lib/whmcs-ticket-exporter"]
USER 10001:10001
EXPOSE 9720
# slim has no curl: probe /healthz with the interpreter. Assumes the default listen port 9720.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9720/healthz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["whmcs-ticket-exporter"]
CMD ["--web.listen-address=:9720"]
