"""The baseline of ``bench/e2e_email.py``: a bare Dramatiq no-op actor on a Redis broker.

    dramatiq noop_worker:broker --path bench --processes 2 --threads 8 --queues bench_noop

Reads ``REDIS_URL`` and ``REDIS_NAMESPACE`` (the bench's own namespace); default middleware,
no database, nothing else. Not part of the product.
"""

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

QUEUE = "bench_noop"
ACTOR = "bench_noop"

broker = RedisBroker(url=os.environ["REDIS_URL"], namespace=os.environ["REDIS_NAMESPACE"])
dramatiq.set_broker(broker)


@dramatiq.actor(actor_name=ACTOR, queue_name=QUEUE, max_retries=0, broker=broker)
def noop() -> None:
    pass
