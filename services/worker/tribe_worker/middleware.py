"""Worker middleware: a pooled database connection per message, the worker heartbeat, and the
periodic tasks' last runs."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable

import dramatiq
import redis

from tribe_shared import tracing
from tribe_shared.db import DATABASE_DOWN_ERRORS, database

log = logging.getLogger(__name__)

#: How often a worker process writes its heartbeat (readers allow 60 s).
HEARTBEAT_SECONDS = 15.0


class DatabaseConnections(dramatiq.Middleware):
    """Open a connection before each message and hand it back to the pool after."""

    def before_process_message(self, broker, message):
        # An unreachable database is not the message's fault: raised here, it would use up one
        # of its retries. The actor meets the outage at its first statement (peewee connects
        # on demand) and decides; a delivery waits without counting a retry.
        with contextlib.suppress(DATABASE_DOWN_ERRORS):
            database.connect(reuse_if_open=True)

    def after_process_message(self, broker, message, *, result=None, exception=None):
        if not database.is_closed():
            database.close()

    after_skip_message = after_process_message


class WorkerHeartbeat(dramatiq.Middleware):
    """Tell readers (the API's health and metrics) that this worker process is alive.

    From worker boot to worker shutdown a daemon thread puts ``<hostname>:<pid>`` into the Redis
    sorted set ``key`` scored with the time (``clock``, epoch seconds), every ``interval``
    seconds; a clean shutdown removes it. A reader counts the members scored within the last
    minute.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        key: str,
        interval: float = HEARTBEAT_SECONDS,
        clock: Callable[[], float] = time.time,
    ):
        self.client = client
        self.key = key
        self.interval = interval
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def member(self) -> str:
        return f"{socket.gethostname()}:{os.getpid()}"

    def after_worker_boot(self, broker, worker):
        self._stop.clear()
        self._beat()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker, worker):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.client.zrem(self.key, self.member)
        except redis.RedisError as exc:
            log.warning("could not remove the worker heartbeat: %s", exc)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._beat()

    def _beat(self) -> None:
        try:
            self.client.zadd(self.key, {self.member: self.clock()})
        except redis.RedisError as exc:  # Redis down: the next beat tries again
            log.warning("could not write the worker heartbeat: %s", exc)


class PeriodicRuns(dramatiq.Middleware):
    """Record when each periodic task (a periodiq actor) last ran to the end without an error.

    Field ``<actor name>`` of the Redis hash ``key``, value the unix time. The API's health and
    ``tribe_scheduler_last_run_timestamp_seconds`` read it: a scheduler that died, or no worker
    consuming the ``maintenance`` queue, shows as tasks whose last run grows old.
    """

    def __init__(self, client: redis.Redis, *, key: str, clock=time.time):
        self.client = client
        self.key = key
        self._clock = clock

    def after_process_message(self, broker, message, *, result=None, exception=None):
        if exception is not None:
            return
        actor = broker.actors.get(message.actor_name)
        if actor is None or not actor.options.get("periodic"):
            return
        try:
            self.client.hset(self.key, message.actor_name, self._clock())
        except redis.RedisError as exc:  # Redis down: the next run records again
            log.warning("could not record the run of %s: %s", message.actor_name, exc)


class Tracing(dramatiq.Middleware):
    """A consumer span around each message (only added when tracing is on), continuing the
    trace its sender put in the message's options: the request that accepted the jobs."""

    def __init__(self):
        self._open = threading.local()

    def before_process_message(self, broker, message):
        started = tracing.span(
            f"process {message.actor_name}",
            kind="consumer",
            parent=message.options.get(tracing.MESSAGE_OPTION),
            **{
                "messaging.system": "dramatiq",
                "messaging.destination.name": message.queue_name,
                "messaging.message.id": message.message_id,
            },
        )
        started.__enter__()
        self._open.span = started

    def after_process_message(self, broker, message, *, result=None, exception=None):
        started = getattr(self._open, "span", None)
        if started is not None:
            self._open.span = None
            started.__exit__(None, None, None)

    after_skip_message = after_process_message
