"""The worker's own Prometheus metrics (names agreed in issue #6), counted where each thing happens.

They live in prometheus-client's default registry. In a ``dramatiq`` worker process,
:mod:`tribe_worker.main` points ``PROMETHEUS_MULTIPROC_DIR`` at Dramatiq's ``dramatiq_prom_db``
before prometheus-client is imported (:mod:`tribe_worker.metrics_dir`), so every value is written
to that directory and the Prometheus middleware's exposition server sums them over the worker
processes together with its own ``dramatiq_*`` metrics. Elsewhere (tests, ``tribe-dev``, the
scheduler) they are plain in-process values.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Histogram

from tribe_shared.circuit import CircuitState

#: Provider calls of a few milliseconds (a kept-alive connection) up to a timed-out one.
PROVIDER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: The contract promises a digest within 2 minutes of its local time.
DIGEST_LAG_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0, 6 * 3600.0)

provider_calls = Counter(
    "tribe_provider_calls_total",
    "Provider calls and their outcome (sent, transient, permanent).",
    ["provider", "outcome"],
)
provider_call_duration = Histogram(
    "tribe_provider_call_duration_seconds",
    "Provider call latency.",
    ["provider"],
    buckets=PROVIDER_BUCKETS,
)
job_retries = Counter(
    "tribe_job_retries_total",
    "Transient failures after which the job is retried.",
    ["kind"],
)
jobs_finished = Counter(
    "tribe_jobs_finished_total",
    "Jobs reaching a final status in the worker.",
    ["kind", "status"],
)
gate_deferrals = Counter(
    "tribe_gate_deferrals_total",
    "Deliveries deferred at a gate (a rate-limiter wait, an open circuit, an earlier digest).",
    ["gate"],
)
circuit_transitions = Counter(
    "tribe_circuit_transitions_total",
    "Circuit breaker transitions this process caused.",
    ["to_state"],
)
suppressed_skips = Counter(
    "tribe_suppressed_skips_total",
    "Jobs skipped because their address is suppressed (a bounce, a complaint, an unsubscribe).",
    ["kind"],
)
digests = Counter("tribe_digests_total", "Digests built, sent or skipped.", ["outcome"])
digest_delivery_lag = Histogram(
    "tribe_digest_delivery_lag_seconds",
    "Sent time minus the digest's scheduled run (its digest_period).",
    buckets=DIGEST_LAG_BUCKETS,
)

email_failovers = Counter(
    "tribe_email_failovers_total",
    "Email provider calls sent through the failover provider while the circuit was open.",
    ["provider"],
)


def count_finished(kinds: Iterable[str], status: str) -> None:
    """One job per item of ``kinds`` (each job's kind) reached ``status``."""
    for kind in kinds:
        jobs_finished.labels(kind=str(kind), status=str(status)).inc()


def count_transition(to_state: CircuitState) -> None:
    """The circuit breaker's ``on_transition``."""
    circuit_transitions.labels(to_state=to_state.value).inc()
