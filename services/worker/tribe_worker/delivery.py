"""Delivering jobs: claim, compose, pass the gates, send, record. Plain functions the actors call.

A job is claimed by an atomic status transition (``pending``/``queued`` → ``processing``), so a
message delivered twice, or a stale one for a cancelled job, sends nothing. Every provider call
writes one delivery-log row per job. A transient failure puts the job back to ``queued`` and asks
Dramatiq for a retry with exponential backoff; a permanent one fails the job at once.

Email calls pass two gates shared by every worker: the global rate limit and the circuit breaker.
A job held back by a gate is released (back to ``queued``, its attempt not counted) and its
message is deferred with :class:`Deferred`, which does not consume a retry.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import dramatiq
from dramatiq.common import compute_backoff

from tribe_shared.circuit import CircuitBreaker
from tribe_shared.contract import (
    NOTIFICATION_TEMPLATE,
    DeliveryMethod,
    DeliveryStatus,
    JobKind,
    JobStatus,
)
from tribe_shared.db import DATABASE_DOWN_ERRORS, database, execute_together, is_unreachable
from tribe_shared.models import DeliveryLog, NotificationJob, Recipient, utcnow
from tribe_worker import statements
from tribe_worker.digest_build import DigestSkip, DigestWait, compose_digest
from tribe_worker.emails.providers import Addressee, DeliveryError, EmailProvider
from tribe_worker.emails.render import RenderError, render_email
from tribe_worker.gates import Gates
from tribe_worker.journal import Attempt, Journal
from tribe_worker.sms import SmsProvider

log = logging.getLogger(__name__)

#: A job may be claimed this long before its ``scheduled_for`` (broker delays are not exact).
EARLY_CLAIM_SLACK = timedelta(seconds=5)
#: Longest wait between two attempts.
MAX_BACKOFF_MS = 60 * 60 * 1000
#: Longest a worker thread waits for the rate limiter before it defers the message instead.
MAX_LIMITER_WAIT_MS = 2_000

#: Pause between two tries at recording an outcome while the database is unreachable.
RECORD_RETRY_SECONDS = 0.5

#: The Tribe app's page where a recipient mutes these emails (the app serves it, not this API).
MUTE_URL = "{base}/recipients/{recipient_id}/mute"
#: The gates, as metrics and logs name them.
RATE_LIMIT_GATE = "rate_limit"
CIRCUIT_GATE = "circuit"
#: Not a gate of the provider's: a digest waiting for an earlier one of its schedule.
EARLIER_DIGEST_GATE = "earlier_digest"
#: How long such a digest waits before it looks again.
EARLIER_DIGEST_WAIT_SECONDS = 5.0


class Deferred(Exception):
    """Try this message again after ``delay_ms`` without counting a retry (a gate was closed)."""

    def __init__(self, delay_ms: int):
        super().__init__(f"deferred for {delay_ms} ms")
        self.delay_ms = delay_ms


@dataclass(frozen=True)
class Delivery:
    """What delivering needs: providers, gates, the sender address, a clock and the retry base."""

    provider: EmailProvider
    sms: SmsProvider
    #: The rate limit and the circuit, asked together; ``circuit`` is the latter.
    gates: Gates
    sender: str
    clock: Callable[[], datetime]
    backoff_ms: int
    #: ``PUBLIC_BASE_URL``: where the Tribe app is; None leaves links to it out of emails.
    public_base_url: str | None = None
    #: Seconds to keep trying to record a provider's answer while the database is unreachable.
    record_patience: float = 0.0

    def mute_url(self, recipient_id: UUID | None) -> str | None:
        """The link that mutes ``recipient_id`` in the Tribe app, if the app's URL is known."""
        if self.public_base_url is None or recipient_id is None:
            return None
        return MUTE_URL.format(base=self.public_base_url, recipient_id=recipient_id)

    @property
    def circuit(self) -> CircuitBreaker:
        return self.gates.circuit


@dataclass(frozen=True)
class Outgoing:
    """One provider call for one or more jobs, ready to make (or why it cannot be made)."""

    jobs: list[NotificationJob]
    provider: str
    send: Callable[[], str] | None = None
    problem: str | None = None
    gated: bool = False
    #: Statements that belong with recording the jobs ``sent`` (a digest closes its window).
    on_sent: tuple = ()
    #: Not now: put the jobs back for this many ms (a digest waiting for an earlier one of
    #: its schedule: :data:`EARLIER_DIGEST_GATE`).
    wait_ms: int = 0


def claim_jobs(job_ids: Sequence[UUID], now: datetime) -> list[NotificationJob]:
    """Atomically move claimable, due jobs to ``processing``; return the ones this call won."""
    return statements.claim(job_ids, now, now + EARLY_CLAIM_SLACK)


def deliver(job_ids: Sequence[UUID], delivery: Delivery, attempt: Attempt | None = None) -> None:
    """Claim the jobs and deliver each (identical emails in one provider call), recording it all.

    Raises :class:`dramatiq.Retry` after recording when a job hit a transient failure, or
    :class:`Deferred` when a gate held jobs back; the next run re-claims only jobs still waiting.
    ``attempt`` says which actor runs it and whether a transient failure will be retried (for
    the logs and metrics, :mod:`tribe_worker.journal`).
    """
    journal = Journal(attempt or Attempt())
    now = delivery.clock()
    claimed = claim_jobs(job_ids, now)
    journal.claimed(claimed)
    jobs = _skip_muted(claimed, now, journal)
    retries: list[int] = []
    deferrals: list[int] = []
    for outgoing in _compose(jobs, delivery, journal):
        if outgoing.problem is not None:
            failure = DeliveryError(outgoing.problem, transient=False)
            _record_failure(outgoing, delivery, failure, 0, journal)
            continue
        wait_ms, clean, gate = outgoing.wait_ms, True, EARLIER_DIGEST_GATE
        if outgoing.gated and not wait_ms:
            wait_ms, clean, gate = _pass_gates(delivery)
        if wait_ms:
            _release(outgoing.jobs)
            journal.deferred(outgoing.jobs, gate, wait_ms)
            deferrals.append(wait_ms)
            continue
        started = time.perf_counter()
        try:
            message_id = outgoing.send()
        except DeliveryError as exc:
            if exc.refused:
                journal.called(outgoing.provider, "refused", time.perf_counter() - started)
                deferrals.append(_pause(outgoing, delivery, exc, _ms_since(started), journal))
                continue
            outcome = "transient" if exc.transient else "permanent"
            journal.called(outgoing.provider, outcome, time.perf_counter() - started)
            if outgoing.gated:
                _observe(delivery.circuit, exc, clean)
            backoff_ms = _backoff_ms(outgoing.jobs, delivery, exc) if exc.transient else 0
            _record_failure(outgoing, delivery, exc, _ms_since(started), journal, backoff_ms)
            if exc.transient:
                retries.append(backoff_ms)
            continue
        journal.called(outgoing.provider, "sent", time.perf_counter() - started)
        if outgoing.gated and not clean:
            delivery.circuit.record_success()
        _record_success(outgoing, delivery, message_id, _ms_since(started), journal)
    if retries:
        raise dramatiq.Retry(delay=max(retries))
    if deferrals:
        raise Deferred(max(deferrals))


def mark_exhausted(
    job_ids: Sequence[UUID],
    retries: int,
    dead_letter: str | None,
    clock: Callable[[], datetime],
    *,
    actor: str = "",
) -> int:
    """Fail jobs whose retries ran out (the ``on_retry_exhausted`` callback); return how many.

    ``dead_letter`` locates their dead-lettered message, for a manual retry to remove; ``actor``
    is the one whose retries ran out.
    """
    now = clock()
    jobs = NotificationJob.select().where(
        NotificationJob.id.in_(list(job_ids)), NotificationJob.status == JobStatus.QUEUED
    )
    failed = []
    for job in jobs:
        reason = f"Retries exhausted after {retries + 1} attempts: {job.failure_reason or ''}"
        if (
            NotificationJob.update(
                status=JobStatus.FAILED,
                failure_reason=reason.strip(),
                processed_at=now,
                dead_letter=dead_letter,
            )
            .where(NotificationJob.id == job.id, NotificationJob.status == JobStatus.QUEUED)
            .execute()
        ):
            failed.append(job)
    Journal(Attempt(actor, will_retry=False)).exhausted(failed, retries)
    return len(failed)


# --- composing ---------------------------------------------------------------------------


#: Kinds of job addressed to a recipient, which a mute silences.
_TO_RECIPIENTS = (JobKind.NOTIFICATION, JobKind.DIGEST)


def _skip(jobs: list, reason: str, now: datetime, journal: Journal, *also) -> None:
    """Record claimed jobs as ``skipped`` (nothing to send), with statements that go with it."""
    execute_together(
        NotificationJob.update(
            status=JobStatus.SKIPPED, failure_reason=reason, processed_at=now
        ).where(
            NotificationJob.id.in_([job.id for job in jobs]),
            NotificationJob.status == JobStatus.PROCESSING,
        ),
        *also,
    )
    journal.skipped(jobs, reason)


def _skip_muted(
    jobs: list[NotificationJob], now: datetime, journal: Journal
) -> list[NotificationJob]:
    """Skip jobs to recipients muted at send time; return the jobs still to deliver."""
    recipient_ids = {job.recipient_id for job in jobs if job.kind in _TO_RECIPIENTS}
    if not recipient_ids:
        return jobs
    muted = {
        r.id
        for r in Recipient.select(Recipient.id).where(
            Recipient.id.in_(list(recipient_ids)), Recipient.muted_until > now
        )
    }
    skipped = [job for job in jobs if job.kind in _TO_RECIPIENTS and job.recipient_id in muted]
    if skipped:
        _skip(skipped, "muted", now, journal)
    return [job for job in jobs if job not in skipped]


def _compose(jobs: list[NotificationJob], delivery: Delivery, journal: Journal) -> list[Outgoing]:
    emails: dict[str, list[NotificationJob]] = {}
    notifications = []
    for job in jobs:
        if job.kind == JobKind.EMAIL:
            emails.setdefault(job.batch_key or str(job.id), []).append(job)
        else:
            notifications.append(job)
    outgoing = [_email(group, delivery) for group in emails.values()]
    if notifications:
        recipients = {
            r.id: r
            for r in Recipient.select().where(
                Recipient.id.in_([job.recipient_id for job in notifications])
            )
        }
        for job in notifications:
            recipient = recipients.get(job.recipient_id)
            if job.kind == JobKind.DIGEST:
                digest = _digest(job, recipient, delivery, journal)
                if digest is not None:
                    outgoing.append(digest)
            else:
                outgoing.append(_notification(job, recipient, delivery))
    return outgoing


def _digest(job, recipient: Recipient | None, delivery: Delivery, journal: Journal):
    """The digest's email, or None when there was nothing to send (the job is then skipped)."""
    try:
        digest = compose_digest(job, recipient)
    except RenderError as exc:
        return Outgoing([job], delivery.provider.name, problem=str(exc))
    if isinstance(digest, DigestWait):
        wait_ms = _spread_ms(EARLIER_DIGEST_WAIT_SECONDS)
        return Outgoing([job], delivery.provider.name, wait_ms=wait_ms)
    if isinstance(digest, DigestSkip):
        also = () if digest.advance is None else (digest.advance,)
        _skip([job], digest.reason, delivery.clock(), journal, *also)
        return None
    to = [Addressee(digest.address, job.id)]
    return Outgoing(
        [job],
        delivery.provider.name,
        send=lambda: delivery.provider.send(digest.email, delivery.sender, to),
        gated=True,
        on_sent=(digest.advance,),
    )


def _email(group: list[NotificationJob], delivery: Delivery) -> Outgoing:
    content = group[0].content or {}
    name = delivery.provider.name
    try:
        email = render_email(
            content.get("type", ""), content.get("templateData") or {}, content.get("subject")
        )
    except RenderError as exc:
        return Outgoing(group, name, problem=str(exc))
    to = [Addressee(job.to_email, job.id) for job in group]
    return Outgoing(
        group, name, send=lambda: delivery.provider.send(email, delivery.sender, to), gated=True
    )


def _notification(job, recipient: Recipient | None, delivery: Delivery) -> Outgoing:
    content = job.content or {}
    if job.delivery_method == DeliveryMethod.EMAIL:
        name = delivery.provider.name
        address = (recipient.email if recipient else None) or job.to_email
        if not address:
            return Outgoing([job], name, problem="The recipient has no email address")
        try:
            data = {**content, "mute_url": delivery.mute_url(job.recipient_id)}
            email = render_email(NOTIFICATION_TEMPLATE, data, content.get("subject"))
        except RenderError as exc:
            return Outgoing([job], name, problem=str(exc))
        to = [Addressee(address, job.id)]
        return Outgoing(
            [job],
            name,
            send=lambda: delivery.provider.send(email, delivery.sender, to),
            gated=True,
        )
    name = delivery.sms.name
    phone = recipient.phone if recipient else None
    if not phone:
        return Outgoing([job], name, problem="The recipient has no phone number")
    text = content.get("text") or " - ".join(
        str(part) for part in (content.get("title"), content.get("body")) if part
    )
    method = job.delivery_method
    return Outgoing([job], name, send=lambda: delivery.sms.send(method, phone, text))


# --- gates and timing --------------------------------------------------------------------


def _pass_gates(delivery: Delivery) -> tuple[int, bool, str | None]:
    """(0, clean, None) when this call may go ahead now, else (milliseconds to defer it by,
    False, the gate that held it).

    ``clean``: the circuit was closed with no failure counted, so a success need not be told.
    """
    wait_ms, permission = delivery.gates.enter(MAX_LIMITER_WAIT_MS)
    if wait_ms:
        return wait_ms, False, RATE_LIMIT_GATE
    if permission.allowed:
        return 0, permission.clean, None
    return _spread_ms(permission.wait_seconds), False, CIRCUIT_GATE


def _spread_ms(seconds: float) -> int:
    """A wait of at least ``seconds``, in ms, spread so deferred messages do not all come back
    at the same instant."""
    return math.ceil(seconds * 1000 * random.uniform(1.0, 1.2)) + 1


def _observe(circuit: CircuitBreaker, exc: DeliveryError, clean: bool) -> None:
    if exc.retry_after is not None:
        circuit.hold(exc.retry_after)  # the provider's rate limit is account-wide: all wait
    elif exc.transient:
        circuit.record_failure()
    elif not clean:
        circuit.record_success()  # the provider answered: it is up, the email was bad


def _pause(outgoing: Outgoing, delivery: Delivery, exc: DeliveryError, duration_ms, journal):
    """The provider refused our credentials: stop every worker's sending (the circuit opens for
    its reset interval, then lets one probe through) and put the jobs back without spending a
    retry, logging the attempt. Returns the milliseconds to defer their message by."""
    delivery.circuit.trip()
    now = delivery.clock()
    logs = _logs(outgoing, now, DeliveryStatus.TRANSIENT_FAILURE, duration_ms, error=exc.reason)
    record_patiently(
        lambda: execute_together(
            DeliveryLog.insert_many(logs),
            NotificationJob.update(
                status=JobStatus.QUEUED, queued_at=now, failure_reason=exc.reason
            ).where(
                NotificationJob.id.in_([job.id for job in outgoing.jobs]),
                NotificationJob.status == JobStatus.PROCESSING,
            ),
        ),
        delivery.record_patience,
    )
    wait_ms = _spread_ms(delivery.circuit.reset_seconds)
    journal.deferred(outgoing.jobs, CIRCUIT_GATE, wait_ms)
    log.error("sending paused for every worker: %s", exc.reason)
    return wait_ms


def _backoff_ms(jobs: list[NotificationJob], delivery: Delivery, exc: DeliveryError) -> int:
    retries = max(job.retry_count for job in jobs)
    _, delay = compute_backoff(retries, factor=delivery.backoff_ms, max_backoff=MAX_BACKOFF_MS)
    if exc.retry_after is not None:
        # Round up: a retry a fraction of a millisecond early is still too early.
        delay = max(delay, math.ceil(exc.retry_after * 1000))
    return delay


def _ms_since(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


# --- recording ---------------------------------------------------------------------------


def _release(jobs: list[NotificationJob]) -> None:
    """Undo a claim: back to ``queued``, the attempt not counted."""
    NotificationJob.update(
        status=JobStatus.QUEUED,
        claimed_at=None,
        queued_at=utcnow(),
        attempts=NotificationJob.attempts - 1,
    ).where(
        NotificationJob.id.in_([job.id for job in jobs]),
        NotificationJob.status == JobStatus.PROCESSING,
    ).execute()


def _logs(outgoing: Outgoing, now, status, duration_ms, message_id=None, error=None):
    return [
        {
            "job": job.id,
            "attempt": job.attempts,
            "provider": outgoing.provider,
            "provider_message_id": message_id,
            "status": status,
            "error": error,
            "duration_ms": duration_ms,
            "created_at": now,
        }
        for job in outgoing.jobs
    ]


def record_patiently(
    write: Callable[[], object],
    patience: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> None:
    """Run ``write``; while the database is unreachable, try again for up to ``patience`` s.

    The provider has already acted. Giving up leaves the job ``processing``, and once its lease
    runs out the reaper hands it over again: an email sent twice. Waiting out a short database
    outage here keeps that duplicate away (SendGrid has no idempotency key to do it for us).
    """
    deadline = monotonic() + patience
    while True:
        try:
            write()
            return
        except DATABASE_DOWN_ERRORS as exc:
            if not is_unreachable(exc) or monotonic() >= deadline:
                raise
            # A broken connection goes back to the pool to be discarded; the next try connects.
            with contextlib.suppress(*DATABASE_DOWN_ERRORS):
                database.close()
            sleep(RECORD_RETRY_SECONDS)


def _record_success(
    outgoing: Outgoing, delivery: Delivery, message_id: str, duration_ms: int, journal: Journal
):
    now = delivery.clock()
    record_patiently(
        lambda: statements.record_sent(
            outgoing.jobs, outgoing.provider, message_id, duration_ms, now, also=outgoing.on_sent
        ),
        delivery.record_patience,
    )
    journal.sent(outgoing.jobs, outgoing.provider, message_id, now)


def _record_failure(
    outgoing: Outgoing,
    delivery: Delivery,
    exc: DeliveryError,
    duration_ms: int,
    journal: Journal,
    backoff_ms: int = 0,
):
    now = delivery.clock()
    if exc.transient:
        status = DeliveryStatus.TRANSIENT_FAILURE
        changes = {
            "status": JobStatus.QUEUED,
            "queued_at": now,
            "retry_count": NotificationJob.retry_count + 1,
            "failure_reason": exc.reason,
        }
    else:
        status = DeliveryStatus.PERMANENT_FAILURE
        changes = {"status": JobStatus.FAILED, "failure_reason": exc.reason, "processed_at": now}
    record_patiently(
        lambda: execute_together(
            DeliveryLog.insert_many(_logs(outgoing, now, status, duration_ms, error=exc.reason)),
            NotificationJob.update(**changes).where(
                NotificationJob.id.in_([job.id for job in outgoing.jobs]),
                NotificationJob.status == JobStatus.PROCESSING,
            ),
        ),
        delivery.record_patience,
    )
    provider = outgoing.provider if outgoing.problem is None else None
    if exc.transient:
        journal.failed_transiently(outgoing.jobs, exc.reason, outgoing.provider, backoff_ms)
    else:
        journal.failed(outgoing.jobs, exc.reason, provider)
