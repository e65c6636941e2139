# syntax=docker/dockerfile:1
# One image for every Parley service. The role is chosen by the command:
#   python -m services.gateway | services.persistence | services.presence | services.persistence.migrate
# Build:  docker build -t parley:0.1.0 .      (pin the bases by digest in your registry mirror:
#         --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:...)
# checkov:skip=CKV_DOCKER_7: the bases are pinned tags in these ARGs, which checkov does not resolve
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:20-bookworm-slim

# --- 1. wheels: every runtime dependency as a wheel (manylinux wheels as published, sdists
#        compiled here: the compilers exist only in this stage) ---
FROM ${PYTHON_IMAGE} AS wheels
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY requirements.txt .
RUN pip wheel --wheel-dir /wheels -r requirements.txt

# --- 2. venv: installed from the wheels only (no index), byte-compiled ahead of time ---
FROM ${PYTHON_IMAGE} AS venv
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY --from=wheels /wheels /wheels
COPY requirements.txt /tmp/requirements.txt
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-index --find-links /wheels -r /tmp/requirements.txt \
 && /opt/venv/bin/pip uninstall -y pip setuptools \
 && /opt/venv/bin/python -m compileall -q /opt/venv

# --- 3. the Socket.IO Admin UI static files (served by the gateway when its password is set) ---
FROM ${NODE_IMAGE} AS adminui
WORKDIR /ui
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts --loglevel=error

# --- 4. runtime: slim Python, no compilers, no package manager use, a fixed non-root uid ---
FROM ${PYTHON_IMAGE} AS runtime
ARG PARLEY_UID=10001
LABEL org.opencontainers.image.title="parley" \
      org.opencontainers.image.description="Parley chat backend: gateway, persistence worker, presence service"
RUN groupadd --system --gid ${PARLEY_UID} parley \
 && useradd --system --uid ${PARLEY_UID} --gid ${PARLEY_UID} --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin parley
COPY --from=venv /opt/venv /opt/venv
COPY --from=adminui /ui/node_modules/@socket.io/admin-ui/ui/dist /app/admin-ui
# the web client served at / (services/gateway/webclient.py looks beside services/)
COPY --from=adminui /ui/node_modules/socket.io-client/dist /app/node_modules/socket.io-client/dist
WORKDIR /app
COPY --chown=root:root services ./services
COPY --chown=root:root web ./web
RUN /opt/venv/bin/python -m compileall -q /app/services
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PARLEY_HOST=0.0.0.0 \
    PARLEY_PORT=8000 \
    PARLEY_ADMIN_UI_DIR=/app/admin-ui
USER ${PARLEY_UID}:${PARLEY_UID}
EXPOSE 8000
# Kubernetes uses the chart's httpGet probes; this is for plain `docker run` (no shell, no curl).
HEALTHCHECK --interval=30s --timeout=3s --retries=3 \
  CMD ["python", "-c", "import os,urllib.request as u;u.urlopen(f\"http://127.0.0.1:{os.environ.get('PARLEY_PORT','8000')}/healthz\",timeout=2)"]
# Exec form: the Python process is PID 1 and receives SIGTERM itself (graceful drain).
CMD ["python", "-m", "services.gateway"]
