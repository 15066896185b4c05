"""gunicorn settings for the API (``web`` in the Procfile).

Metrics: each worker process writes its request counts to files in ``PROMETHEUS_MULTIPROC_DIR``
(a fresh temporary directory unless the variable names one), which ``GET /metrics`` sums. The
variable is set here, in the master, before any process imports prometheus-client; the directory
is emptied when gunicorn starts (counts of a previous run would be summed too).

Errors: gunicorn's own answers to requests it cannot parse are JSON, like the API's
(:mod:`tribe_api.gunicorn_worker`).

Slow clients: gunicorn reads each request on a worker thread with no deadline, so it must not face
the internet alone: in front of it, a router that buffers whole requests (Heroku's) or the nginx of
``deploy/nginx/`` (docker-compose's ``proxy``). See the README's "Deploying".

Logs: one JSON line per record on stderr (:mod:`tribe_shared.logs`), the request log included
(``tribe_api.access``: method, route template, status, duration), so gunicorn's own access log
is off.
"""

import os
import shutil
import tempfile
from pathlib import Path

from tribe_shared.metrics_dir import MULTIPROC_DIR_ENV, empty_metrics_dir
from tribe_shared.settings import load_or_exit

# Fail fast, in the master, with a one-line message naming the bad variable.
_settings = load_or_exit()

#: The temporary directory made when none was configured (kept across a reload), removed at exit.
_TEMPORARY_DIR_ENV = "TRIBE_API_TEMPORARY_METRICS_DIR"
if MULTIPROC_DIR_ENV not in os.environ:
    os.environ[MULTIPROC_DIR_ENV] = tempfile.mkdtemp(prefix="tribe-api-metrics-")
    os.environ[_TEMPORARY_DIR_ENV] = os.environ[MULTIPROC_DIR_ENV]

wsgi_app = "tribe_api.wsgi:app"
bind = f"0.0.0.0:{_settings.port}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
#: gthread, answering the requests gunicorn refuses itself in JSON, as every other error.
worker_class = "tribe_api.gunicorn_worker.JsonErrorsWorker"
keepalive = 5
timeout = 30
graceful_timeout = 20
accesslog = None
# No control socket: gunicorn's default path ($XDG_RUNTIME_DIR or ~/.gunicorn/gunicorn.ctl) is
# shared by every gunicorn of the user, so one would take over another's; nothing here uses it.
control_socket_disable = True
loglevel = "info"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "tribe_shared.logs.JsonFormatter"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"level": "INFO", "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        # The request log is tribe_api.access (with the route template); this one stays off.
        "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
    },
}


def on_starting(server):
    """Empty the metrics directory: counts of an earlier run must not be summed with ours."""
    empty_metrics_dir(Path(os.environ[MULTIPROC_DIR_ENV]))


def child_exit(server, worker):
    """A worker process is gone: drop its live gauges (its counters stay in the sums)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    temporary = os.environ.get(_TEMPORARY_DIR_ENV)
    if temporary and temporary == os.environ.get(MULTIPROC_DIR_ENV):
        shutil.rmtree(temporary, ignore_errors=True)
