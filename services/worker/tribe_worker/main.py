"""Entry module of the ``worker`` and ``scheduler`` processes.

    dramatiq tribe_worker.main:broker --queues emails maintenance
    TZ=UTC periodiq tribe_worker.main:broker

Builds everything from the environment at import, as both CLIs expect.
"""

import logging
import sys

from tribe_shared import db
from tribe_shared.settings import load_or_exit
from tribe_worker.app import build_worker
from tribe_worker.shutdown import ignore_echoed_sigterm

settings = load_or_exit()
if not settings.uses_redis:
    print(
        "configuration error: the worker process needs a broker - REDIS_URL must be "
        "configured (for development without Redis run `tribe-dev`, which runs the worker "
        "in-process)",
        file=sys.stderr,
    )
    raise SystemExit(2)
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
db.bind(settings.database_url)
worker = build_worker(settings)
broker = worker.broker
# In a dramatiq worker process: a SIGTERM sent to the whole process group, then forwarded by the
# main process, must stay one graceful stop (see tribe_worker.shutdown).
ignore_echoed_sigterm()
