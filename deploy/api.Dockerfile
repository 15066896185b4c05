# The API image: tribe-shared and tribe-api only (no worker code). Runs the Procfile's `web`
# (the default command) and `release` (tribe-migrate, from tribe-shared).
#   docker build -f deploy/api.Dockerfile -t tribe-api .
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/tribe-api-metrics
RUN pip install --no-cache-dir uv==0.13.9 \
 && useradd --system --no-create-home tribe
WORKDIR /app

# Third-party dependencies, pinned with hashes from the workspace lock (their own layer: rebuilt
# only when the lock or a pyproject changes).
COPY pyproject.toml uv.lock ./
COPY shared/pyproject.toml shared/
COPY services/api/pyproject.toml services/api/
RUN uv export --package tribe-api --frozen --no-dev --no-emit-workspace -o /tmp/requirements.txt \
 && uv pip install --system --no-cache -r /tmp/requirements.txt

COPY shared shared
COPY services/api services/api
RUN uv pip install --system --no-cache --no-deps ./shared ./services/api

USER tribe
EXPOSE 8000
CMD ["gunicorn", "-c", "services/api/gunicorn.conf.py"]
