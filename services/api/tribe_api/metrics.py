"""Prometheus metrics of the API at ``GET /metrics`` (names agreed in the project's METRICS.md).

Two kinds: request counts and latencies, counted by :class:`RequestMetrics` as requests pass;
and the state of the system (jobs, queues, circuit, workers), read by :class:`StateCollector`
when Prometheus scrapes.

Under gunicorn each worker process counts its own requests. ``gunicorn.conf.py`` sets
``PROMETHEUS_MULTIPROC_DIR`` before prometheus-client is imported, so every process writes its
counts to files there, and a scrape (whichever worker answers it) sums them over all processes.
Without that variable (``tribe-dev``, tests) the counts live in the app's own registry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime

import falcon
import redis
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from spectree import Response

from tribe_api.middleware import route_of
from tribe_api.schemas.errors import Error
from tribe_api.spec import spec
from tribe_api.system_state import read_broker_state, read_job_counts
from tribe_shared.circuit import CircuitState
from tribe_shared.contract import PERIODIC_ACTORS
from tribe_shared.metrics_dir import multiprocess_dir

log = logging.getLogger(__name__)

#: Latency buckets (seconds): the API answers in milliseconds; anything over a second is news.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: The ``method`` label's values; any other method (a client may send anything) is ``other``,
#: so no client can add series at will.
KNOWN_METHODS = frozenset(falcon.constants.COMBINED_METHODS)
#: The ``state`` label of ``tribe_queue_messages`` and the depth it reports.
QUEUE_STATES = {"waiting": "waiting", "delayed": "delayed", "dead": "failed"}


class HttpMetrics:
    """The request counter and latency histogram, registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry):
        self.requests = Counter(
            "tribe_http_requests",
            "Requests served, by method, route template and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "tribe_http_request_duration_seconds",
            "Request latency, by method and route template",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )


class RequestMetrics:
    """Count and time every request by its route template (never the raw path) and status.

    Only in-process counters: no I/O on the request path.
    """

    def __init__(self, metrics: HttpMetrics):
        self._metrics = metrics
        # The labelled children by label values: a dict hit instead of ``labels()``'s checks.
        self._counters: dict[tuple[str, str, str], Counter] = {}
        self._timers: dict[tuple[str, str], Histogram] = {}

    def process_request(self, req, resp):
        req.context.metrics_started = time.perf_counter()

    def process_response(self, req, resp, resource, req_succeeded):
        started = getattr(req.context, "metrics_started", None)
        if started is None:
            return
        elapsed = time.perf_counter() - started
        method = req.method if req.method in KNOWN_METHODS else "other"
        timed = (method, route_of(req))
        timer = self._timers.get(timed) or self._timers.setdefault(
            timed, self._metrics.duration.labels(*timed)
        )
        timer.observe(elapsed)
        counted = (*timed, str(resp.status_code))
        counter = self._counters.get(counted) or self._counters.setdefault(
            counted, self._metrics.requests.labels(*counted)
        )
        counter.inc()


class StateCollector(Collector):
    """The system's state, read at scrape time: one grouped query and one Redis pipeline.

    A scrape never fails: what cannot be read within its timeout is left out, and
    ``tribe_database_up`` / ``tribe_redis_up`` say 0.
    """

    def __init__(
        self,
        *,
        namespace: str,
        redis_client: redis.Redis | None,
        clock: Callable[[], datetime],
    ):
        self._namespace = namespace
        self._redis = redis_client
        self._clock = clock

    def describe(self):
        return []  # read only at scrape time: nothing to check when registering

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self._jobs()
        yield from self._broker()

    def _jobs(self) -> Iterator[GaugeMetricFamily]:
        now = self._clock()
        try:
            counts = read_job_counts(now)
        except Exception as exc:  # whatever the database raised, it is down for this scrape
            log.warning("metrics: jobs table unreadable: %s: %s", type(exc).__name__, exc)
            yield _gauge("tribe_database_up", "1 if the scrape's query worked", 0)
            return
        yield _gauge("tribe_database_up", "1 if the scrape's query worked", 1)
        jobs = GaugeMetricFamily(
            "tribe_jobs", "Jobs by status and delivery method", labels=["status", "delivery_method"]
        )
        for (status, method), count in sorted(counts.by_status.items()):
            jobs.add_metric([status, method], count)
        yield jobs
        yield _gauge(
            "tribe_jobs_overdue",
            "Jobs pending or queued more than 60 s past their scheduled time",
            counts.overdue,
        )
        yield _gauge(
            "tribe_oldest_pending_job_age_seconds",
            "Age of the oldest due pending job (0 when none)",
            counts.oldest_pending_age(now),
        )

    def _broker(self) -> Iterator[GaugeMetricFamily]:
        up = "1 if the scrape's Redis reads worked (0 also when Redis is not configured)"
        if self._redis is None:
            yield _gauge("tribe_redis_up", up, 0)
            yield _circuit_gauge(CircuitState.CLOSED)  # development: nothing can open it
            return
        try:
            state = read_broker_state(self._redis, self._namespace, now=self._clock().timestamp())
        except redis.RedisError as exc:
            log.warning("metrics: Redis unreadable: %s: %s", type(exc).__name__, exc)
            yield _gauge("tribe_redis_up", up, 0)
            return
        yield _gauge("tribe_redis_up", up, 1)
        messages = GaugeMetricFamily(
            "tribe_queue_messages",
            "Broker queue depth, from the broker's Redis keys",
            labels=["queue", "state"],
        )
        for queue, depths in state.queues.items():
            for label, depth in QUEUE_STATES.items():
                messages.add_metric([queue, label], depths[depth])
        yield messages
        yield _circuit_gauge(state.circuit.state)
        yield _gauge(
            "tribe_workers_alive",
            "Worker processes with a heartbeat in the last 60 s",
            state.workers_alive,
        )
        last_runs = GaugeMetricFamily(
            "tribe_scheduler_last_run_timestamp_seconds",
            "Unix time each periodic task last ran to the end (0: never)",
            labels=["task"],
        )
        for task in PERIODIC_ACTORS:
            last_runs.add_metric([task.value], state.last_runs.get(task.value, 0.0))
        yield last_runs


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _circuit_gauge(current: CircuitState) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(
        "tribe_circuit_state",
        "1 for the email circuit breaker's current state, 0 for the others",
        labels=["state"],
    )
    for state in CircuitState:
        gauge.add_metric([state.value], 1 if state == current else 0)
    return gauge


class MetricsResource:
    """``GET /metrics``: Prometheus text format. No token, like health: keep it off the
    public internet (serve it only to the network Prometheus scrapes from)."""

    auth_required = False
    uses_database = False

    def __init__(self, registry: CollectorRegistry, state: StateCollector):
        #: The app's own registry: other counters of the app register here too.
        self.registry = registry
        self._state = state

    @spec.validate(resp=Response(HTTP_200=None, HTTP_413=Error), tags=["metrics"], security={})
    def on_get(self, req, resp):
        """Prometheus metrics (text exposition format, not JSON): requests by route and status,
        jobs by status, queue depths, circuit state, workers alive. Summed over every gunicorn
        worker process."""
        resp.data = generate_latest(self._scrape_registry())
        resp.content_type = CONTENT_TYPE_LATEST
        resp.status = falcon.HTTP_200

    def _scrape_registry(self) -> CollectorRegistry:
        if multiprocess_dir() is None:
            return self.registry
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(self._state)
        return registry


def build_metrics(
    *,
    namespace: str,
    redis_client: redis.Redis | None,
    clock: Callable[[], datetime],
) -> tuple[RequestMetrics, MetricsResource]:
    """The request middleware and the ``/metrics`` resource of one app, on a registry of its
    own (so apps built side by side, as in tests, count separately)."""
    registry = CollectorRegistry()
    state = StateCollector(namespace=namespace, redis_client=redis_client, clock=clock)
    registry.register(state)
    return RequestMetrics(HttpMetrics(registry)), MetricsResource(registry, state)
