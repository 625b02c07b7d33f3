# Confab's image: the server from source on a venv built in a separate stage.
#
#   docker build -t confab .
#   docker run -p 8000:8000 -v confab-data:/data confab      # embedded: SQLite in /data
#   docker run -e DATABASE_URL=postgres://... -e CONFAB_EVENT_BUS=redis://... confab
#
# Without DATABASE_URL the server uses its embedded default, `sqlite://confab.sqlite3`,
# relative to the working directory /data (a volume): /data/confab.sqlite3.
# compose.yaml runs it with PostgreSQL, Redis, two replicas and a load balancer.
# tests/test_container_files.py replays the builder's RUN lines and the COPY lines
# below outside a container engine, and starts the result.

FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Only the dependency list: this layer is rebuilt when pyproject.toml changes,
# not on every source change. The app itself runs from /app (as `python server.py`).
COPY pyproject.toml ./
RUN python -m venv /opt/venv
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; open('requirements.txt', 'w').write('\n'.join(deps) + '\n')"
RUN /opt/venv/bin/pip install -r requirements.txt

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CONFAB_HOST=0.0.0.0 \
    CONFAB_PORT=8000
RUN useradd --system --uid 10001 --user-group --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin confab \
    && mkdir -p /data \
    && chown confab:confab /data
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
# The top-level modules (server.py, settings.py, ...) and every package.
COPY pyproject.toml *.py ./
COPY commands/ commands/
COPY edge/ edge/
COPY graphql/ graphql/
COPY models/ models/
COPY resolvers/ resolvers/
COPY rest/ rest/
COPY runtime/ runtime/
COPY schema/ schema/
# Compiled once here: the app directory is read-only for the confab user.
RUN python -m compileall -q /app
USER confab
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('CONFAB_PORT', '8000') + '/healthz', timeout=2)"]
CMD ["python", "/app/server.py"]
