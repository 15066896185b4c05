"""Phase 1, the baseline: a bare Dramatiq no-op actor (``bench/noop_worker.py``) on the same
Redis, in as many processes and threads as the real workers.

All the messages are enqueued first, then the workers started; the drain is timed from the
first acknowledgement to the queue's last message (Redis ``HLEN <q>.msgs``) -> messages/s.
What the real workers do beyond this is what an email costs.
"""

from __future__ import annotations

import time

import dramatiq
from common.paths import BENCH_DIR
from common.safety import BenchError
from dramatiq.brokers.redis import RedisBroker

from e2e.measure import drain
from e2e.processes import Workers
from e2e.rig import Rig

#: The queue and actor of ``bench/noop_worker.py`` (not imported here: it builds its broker from
#: the environment at import, as the dramatiq CLI wants).
NOOP_QUEUE = NOOP_ACTOR = "bench_noop"


def measure(rig: Rig) -> dict:
    args, store = rig.args, rig.store
    store.purge_redis()
    enqueue_s = _enqueue(args.redis_url, store.namespace, args.noop_messages)
    if store.waiting(NOOP_QUEUE) != args.noop_messages:
        raise BenchError(f"expected {args.noop_messages} messages, got {store.waiting(NOOP_QUEUE)}")
    env = {k: v for k, v in rig.env.items() if k != "DATABASE_URL"}
    size = (args.processes, args.threads)
    workers = rig.start(
        Workers(
            "noop_workers", "noop_worker:broker", (NOOP_QUEUE,), env, size, rig.workdir, BENCH_DIR
        )
    )
    drained = drain(rig, workers, NOOP_QUEUE, args.noop_messages)
    workers.stop()
    dead = store.dead_messages(NOOP_QUEUE)
    store.purge_redis()
    if dead:
        raise BenchError(f"the no-op actor dead-lettered {dead} messages\n{workers.log_tail()}")
    return {"messages": args.noop_messages, "enqueue_s": round(enqueue_s, 3), **drained}


def _enqueue(redis_url: str, namespace: str, count: int) -> float:
    """Put ``count`` no-op messages on the queue; the seconds it took."""
    broker = RedisBroker(url=redis_url, namespace=namespace)
    started = time.perf_counter()
    for _ in range(count):
        broker.enqueue(
            dramatiq.Message(
                queue_name=NOOP_QUEUE, actor_name=NOOP_ACTOR, args=(), kwargs={}, options={}
            )
        )
    enqueue_s = time.perf_counter() - started
    broker.close()
    return enqueue_s
