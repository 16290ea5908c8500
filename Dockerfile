# lmrpc: the License Manager JSON-RPC service.
#   docker build -t lmrpc .
#   docker run -p 8000:8000 -v lmrpc-data:/var/lib/lmrpc lmrpc
# Configuration is by environment only (LMRPC_*, see README.md). Without LMRPC_DATABASE_URL
# and LMRPC_OIDC_* the service runs embedded: SQLite and a signing key in /var/lib/lmrpc;
# mint a token with `docker exec <container> lmrpc token`.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY lmrpc ./lmrpc
COPY actors ./actors
COPY storage ./storage
RUN python -m venv /opt/lmrpc \
    && /opt/lmrpc/bin/pip install --no-cache-dir --disable-pip-version-check .

FROM python:3.11-slim
ENV PATH=/opt/lmrpc/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LMRPC_DATA_DIR=/var/lib/lmrpc \
    LMRPC_HOST=0.0.0.0 \
    LMRPC_PORT=8000
COPY --from=build /opt/lmrpc /opt/lmrpc
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/lmrpc \
        --shell /usr/sbin/nologin lmrpc \
    && mkdir -p /var/lib/lmrpc \
    && chown lmrpc:lmrpc /var/lib/lmrpc \
    && chmod 0700 /var/lib/lmrpc
USER lmrpc
WORKDIR /var/lib/lmrpc
VOLUME ["/var/lib/lmrpc"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('LMRPC_PORT', '8000') + '/healthz', timeout=4)"]
ENTRYPOINT ["lmrpc"]
CMD ["serve", "--host", "0.0.0.0"]
