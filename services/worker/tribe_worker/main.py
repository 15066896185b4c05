"""Entry module of the ``worker`` and ``scheduler`` processes.

    dramatiq tribe_worker.main:broker --queues emails maintenance
    TZ=UTC periodiq tribe_worker.main:broker

Builds everything from the environment at import, as both CLIs expect. A ``dramatiq`` worker
process also serves metrics: Dramatiq's Prometheus middleware runs an exposition server on
``dramatiq_prom_host``:``dramatiq_prom_port`` (default ``0.0.0.0:9191``) that sums the
``dramatiq_*`` and ``tribe_*`` metrics of every worker process, kept in ``dramatiq_prom_db``.
Logs are JSON lines (:mod:`tribe_shared.logs`).
"""

import logging
import sys

from dramatiq.middleware.prometheus import Prometheus

from tribe_shared import db
from tribe_shared.logs import configure_logging
from tribe_shared.settings import exit_on_config_error, load_or_exit
from tribe_shared.tracing import configure_tracing
from tribe_worker.metrics_dir import is_dramatiq_worker_process, use_dramatiq_metrics_dir
from tribe_worker.shutdown import ignore_echoed_sigterm

settings = load_or_exit()
configure_tracing(settings.otel_exporter_otlp_endpoint, "tribe-worker")
if not settings.uses_redis:
    print(
        "configuration error: the worker process needs a broker - REDIS_URL must be "
        "configured (for development without Redis run `tribe-dev`, which runs the worker "
        "in-process)",
        file=sys.stderr,
    )
    raise SystemExit(2)
if is_dramatiq_worker_process():
    use_dramatiq_metrics_dir()
# Only now: it imports prometheus-client, which must find PROMETHEUS_MULTIPROC_DIR set.
from tribe_worker.worker import build_worker  # noqa: E402

# The CLIs installed their handlers (the dramatiq worker's write to its main process): keep
# them and their level, and make them write JSON.
_root = logging.getLogger()
configure_logging(_root.level if _root.handlers else logging.INFO)
db.bind(settings.database_url, pooler=settings.database_pooler)
with exit_on_config_error():  # e.g. a proxy variable the SendGrid provider cannot use
    worker = build_worker(settings)
broker = worker.broker
broker.add_middleware(Prometheus())
# In a dramatiq worker process: a SIGTERM sent to the whole process group, then forwarded by the
# main process, must stay one graceful stop (see tribe_worker.shutdown).
ignore_echoed_sigterm()
