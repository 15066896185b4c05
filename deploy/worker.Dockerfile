# The worker image: tribe-shared and tribe-worker only (no API code). Runs the Procfile's
# `worker` (the default command) and `scheduler` (periodiq).
#   docker build -f deploy/worker.Dockerfile -t tribe-worker .
FROM python:3.11-slim
# dramatiq_prom_*: Dramatiq's Prometheus exposition server (one answer for every worker
# process), scraped by Prometheus at worker:9191; dramatiq_worker_timeout as in the Procfile.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    dramatiq_prom_port=9191 \
    dramatiq_prom_db=/tmp/dramatiq-prometheus \
    dramatiq_worker_timeout=100
RUN pip install --no-cache-dir uv==0.13.9 \
 && useradd --system --no-create-home tribe
WORKDIR /app

# Third-party dependencies, pinned with hashes from the workspace lock (their own layer: rebuilt
# only when the lock or a pyproject changes).
COPY pyproject.toml uv.lock ./
COPY shared/pyproject.toml shared/
COPY services/worker/pyproject.toml services/worker/
RUN uv export --package tribe-worker --frozen --no-dev --no-emit-workspace -o /tmp/requirements.txt \
 && uv pip install --system --no-cache -r /tmp/requirements.txt

COPY shared shared
COPY services/worker services/worker
RUN uv pip install --system --no-cache --no-deps ./shared ./services/worker

USER tribe
EXPOSE 9191
CMD ["dramatiq", "tribe_worker.main:broker", "--processes", "2", "--threads", "8", \
     "--queues", "emails_urgent", "emails", "maintenance"]
