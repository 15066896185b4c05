"""The delivery loop: claim, compose, pass the gates, send, record. What every delivery actor runs.

A job is claimed by an atomic status transition (``pending``/``queued`` → ``processing``), so a
message delivered twice, or a stale one for a cancelled job, sends nothing. The claimed jobs are
composed into steps (:mod:`tribe_worker.compose`), and the loop carries each out:

- a send passes the email provider's gates (the global rate limit and the circuit breaker,
  :mod:`tribe_worker.gates`), calls the provider and records the answer
  (:mod:`tribe_worker.recording`): one delivery-log row per job;
- a transient failure puts the job back to ``queued`` and, once every step is done, asks
  Dramatiq for a retry with exponential backoff (:class:`dramatiq.Retry`); a permanent one fails
  the job at once;
- while the circuit is open, an email goes through the failover provider when one is set
  (``EMAIL_FAILOVER_TO_SMTP``: the SMTP relay) instead of waiting;
- a job held at a gate, or waiting for an earlier digest, is released (its attempt not counted)
  and its message deferred (:class:`tribe_worker.deferrals.Deferred`), which spends no retry;
  so does a database that cannot be reached.

Every change is told to the job's events (:mod:`tribe_worker.job_events`): a log line and
its metrics.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from uuid import UUID

import dramatiq
from dramatiq.common import compute_backoff

from tribe_shared import tracing
from tribe_shared.db import DATABASE_DOWN_ERRORS, is_unreachable
from tribe_shared.sql.delivery import claim
from tribe_worker import recording
from tribe_worker.compose import Composer, Fail, Send, Skip, Wait, compose, spread_ms
from tribe_worker.deferrals import Deferred
from tribe_worker.emails.providers import DeliveryError, EmailProvider
from tribe_worker.gates import Gates, OpenGates
from tribe_worker.job_events import Attempt, JobEvents
from tribe_worker.metrics import email_failovers

log = logging.getLogger(__name__)

#: A job may be claimed this long before its ``scheduled_for`` (broker delays are not exact).
EARLY_CLAIM_SLACK = timedelta(seconds=5)
#: Longest wait between two attempts.
MAX_BACKOFF_MS = 60 * 60 * 1000
#: Longest a worker thread waits for the rate limiter before it defers the message instead.
MAX_LIMITER_WAIT_MS = 2_000
#: The same for an urgent or high job: normal jobs yield to it, so it waits only for the fast
#: lane's own traffic, and waiting holds its turn where a deferral would give it up.
MAX_FAST_LANE_WAIT_MS = 10_000
#: Longest a normal job's thread gives way to the fast lane before it defers its message: the
#: thread is then free for an urgent message its process has fetched.
MAX_YIELD_MS = 250
#: The gates, as metrics and logs name them.
RATE_LIMIT_GATE = "rate_limit"
CIRCUIT_GATE = "circuit"
#: The lane of a :class:`~tribe_worker.compose.Send` to the SMS/WhatsApp provider.
SMS_LANE = "sms"
_OPEN = OpenGates()


@dataclass(frozen=True)
class Delivery:
    """What delivering needs: composing's providers and links, the gates, a clock, the retry
    base, and how long to keep trying to record a provider's answer while the database is
    unreachable (seconds)."""

    composer: Composer
    gates: Gates | OpenGates
    clock: Callable[[], datetime]
    backoff_ms: int
    record_patience: float = 0.0
    #: A fast-lane message waits for a thread of this process (see
    #: :class:`tribe_worker.fast_lane.FastLaneWatch`): a normal job waiting at the rate limit
    #: gives its thread up.
    fast_lane_waiting: Callable[[], bool] = lambda: False
    #: The SMS/WhatsApp provider's own gates (its rate limit, its breaker); None: open.
    sms_gates: Gates | OpenGates | None = None

    def gates_of(self, step: Send) -> Gates | OpenGates:
        """The gates of the provider ``step`` calls."""
        if step.lane == SMS_LANE:
            return self.sms_gates or _OPEN
        return self.gates


@dataclass
class _Outcome:
    """What the steps of one run asked for: retries and deferrals (ms), the gate of the last."""

    retries: list[int]
    deferrals: list[int]
    gate: str = ""

    def defer(self, gate: str, delay_ms: int) -> None:
        self.deferrals.append(delay_ms)
        self.gate = gate


def deliver(job_ids: Sequence[UUID], delivery: Delivery, attempt: Attempt | None = None) -> None:
    """Claim the jobs and deliver each (identical emails in one provider call), recording it all.

    Raises :class:`dramatiq.Retry` after recording when a job hit a transient failure, or
    :class:`Deferred` when jobs must wait; the next run re-claims only jobs still waiting.
    ``attempt`` says which actor runs it and whether a transient failure will be retried.
    """
    events = JobEvents(attempt or Attempt())
    outcome = _Outcome([], [])
    try:
        now = delivery.clock()
        claimed = claim(job_ids, now, now + EARLY_CLAIM_SLACK)
        events.claimed(claimed)
        for step in compose(claimed, delivery.composer, now):
            _carry_out(step, delivery, events, outcome)
    except DATABASE_DOWN_ERRORS as exc:
        if not is_unreachable(exc):
            raise
        # A job claimed before it struck stays ``processing`` until the reaper's lease ends.
        raise Deferred(f"database unreachable: {exc}") from exc
    if outcome.retries:
        raise dramatiq.Retry(delay=max(outcome.retries))
    if outcome.deferrals:
        raise Deferred(outcome.gate, max(outcome.deferrals))


def _carry_out(step, delivery: Delivery, events: JobEvents, outcome: _Outcome) -> None:
    match step:
        case Skip(jobs, reason, also):
            recording.skipped(jobs, reason, delivery.clock(), also)
            events.skipped(jobs, reason)
        case Fail(jobs, reason, provider):
            now = delivery.clock()
            recording.failed(
                jobs, provider, reason, 0, now, transient=False, patience=delivery.record_patience
            )
            events.failed(jobs, reason, None)
        case Wait(jobs, gate, delay_ms):
            recording.released(jobs, delivery.clock())
            events.deferred(jobs, gate, delay_ms)
            outcome.defer(gate, delay_ms)
        case Send():
            _send(step, delivery, events, outcome)


def _send(step: Send, delivery: Delivery, events: JobEvents, outcome: _Outcome) -> None:
    """Pass the gates (if the step is gated), call the provider and record what it said."""
    clean = True
    gates = delivery.gates_of(step)
    if step.gated:
        fast_lane = events.attempt.fast_lane
        wait_ms, clean, gate = _pass_gates(gates, step, fast_lane, delivery.fast_lane_waiting)
        failover = delivery.composer.failover
        if wait_ms and gate == CIRCUIT_GATE and failover is not None and step.via is not None:
            step = _failed_over(step, failover)
        elif wait_ms:
            recording.released(step.jobs, delivery.clock())
            events.deferred(step.jobs, gate, wait_ms)
            outcome.defer(gate, wait_ms)
            return
    circuit = gates.circuit
    started = time.perf_counter()
    try:
        attributes = {"tribe.provider": step.provider, "tribe.jobs": len(step.jobs)}
        with tracing.span(f"{step.provider} send", kind="client", **attributes):
            message_id = step.call()
    except DeliveryError as exc:
        seconds = time.perf_counter() - started
        if exc.refused:
            events.called(step.provider, "refused", seconds)
            outcome.defer(CIRCUIT_GATE, _pause(step, delivery, gates, exc, seconds, events))
            return
        events.called(step.provider, "transient" if exc.transient else "permanent", seconds)
        if step.gated:
            _observe(circuit, exc, clean)
        now, patience = delivery.clock(), delivery.record_patience
        recording.failed(
            step.jobs, step.provider, exc.reason, int(seconds * 1000), now,
            transient=exc.transient, patience=patience,
        )  # fmt: skip
        if exc.transient:
            backoff_ms = _backoff_ms(step.jobs, delivery, exc)
            events.failed_transiently(step.jobs, exc.reason, step.provider, backoff_ms)
            outcome.retries.append(backoff_ms)
        else:
            events.failed(step.jobs, exc.reason, step.provider)
        return
    seconds = time.perf_counter() - started
    events.called(step.provider, "sent", seconds)
    if step.gated and not clean:
        circuit.record_success()
    now = delivery.clock()
    recording.sent(
        step.jobs, step.provider, message_id, int(seconds * 1000), now,
        also=step.on_sent, patience=delivery.record_patience,
    )  # fmt: skip
    events.sent(step.jobs, step.provider, message_id, now)


def _failed_over(step: Send, failover: EmailProvider) -> Send:
    """The step's email through ``failover`` (the SMTP relay) while the email provider's circuit
    is open: past the circuit, which stays the provider's own (what the relay answers says
    nothing of SendGrid), and retried like any send if the relay fails too."""
    assert step.via is not None
    via = step.via
    email_failovers.labels(provider=failover.name).inc()
    log.info("circuit open: job(s) %s sent through %s", _ids(step.jobs), failover.name)
    return replace(step, provider=failover.name, call=lambda: via(failover), gated=False)


def _ids(jobs) -> str:
    return ", ".join(str(job.id) for job in jobs)


def _pass_gates(
    gates: Gates | OpenGates, step: Send, fast_lane: bool, give_up: Callable[[], bool]
) -> tuple[int, bool, str]:
    """(0, clean, "") when this call may go ahead now, else (milliseconds to defer it by,
    False, the gate that held it).

    ``clean``: the circuit was closed with no failure counted, so a success need not be told.
    A fast-lane call waits at the gates under its first job's id, and normal calls yield to it.
    """
    if fast_lane:
        waiter = str(step.jobs[0].id)
        wait_ms, permission = gates.enter(MAX_FAST_LANE_WAIT_MS, waiter=waiter)
    else:
        wait_ms, permission = gates.enter(
            MAX_LIMITER_WAIT_MS, max_yield_ms=MAX_YIELD_MS, give_up=give_up
        )
    if wait_ms:
        return wait_ms, False, RATE_LIMIT_GATE
    if permission.allowed:
        return 0, permission.clean, ""
    return spread_ms(permission.wait_seconds), False, CIRCUIT_GATE


def _observe(circuit, exc: DeliveryError, clean: bool) -> None:
    if exc.retry_after is not None:
        circuit.hold(exc.retry_after)  # the provider's rate limit is account-wide: all wait
    elif exc.transient:
        circuit.record_failure()
    elif not clean:
        circuit.record_success()  # the provider answered: it is up, the email was bad


def _pause(step: Send, delivery: Delivery, gates, exc: DeliveryError, seconds, events) -> int:
    """The provider refused our credentials: stop every worker's sending (the circuit opens for
    its reset interval, then lets one probe through) and put the jobs back without spending a
    retry, logging the attempt. Returns the milliseconds to defer their message by."""
    circuit = gates.circuit
    circuit.trip()
    recording.paused(
        step.jobs, step.provider, exc.reason, int(seconds * 1000), delivery.clock(),
        patience=delivery.record_patience,
    )  # fmt: skip
    wait_ms = spread_ms(circuit.reset_seconds)
    events.deferred(step.jobs, CIRCUIT_GATE, wait_ms)
    log.error("sending paused for every worker: %s", exc.reason)
    return wait_ms


def _backoff_ms(jobs, delivery: Delivery, exc: DeliveryError) -> int:
    retries = max(job.retry_count for job in jobs)
    _, delay = compute_backoff(retries, factor=delivery.backoff_ms, max_backoff=MAX_BACKOFF_MS)
    if exc.retry_after is not None:
        # Round up: a retry a fraction of a millisecond early is still too early.
        delay = max(delay, math.ceil(exc.retry_after * 1000))
    return delay
