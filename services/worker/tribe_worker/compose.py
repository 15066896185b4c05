"""Composing: what claimed jobs come to, before anything is sent or written.

:func:`compose` reads what it needs (recipients, a digest's updates) and returns one step per
provider call to make or per group of jobs with nothing to send; it never writes. The delivery
loop (:mod:`tribe_worker.delivery`) carries each step out:

- :class:`Send`: one provider call for one or more jobs (identical emails of a bulk request
  travel together);
- :class:`Fail`: the jobs cannot be sent (no address, content that does not render): they fail
  at once, with the reason;
- :class:`Wait`: not now (a digest whose schedule has an earlier digest still to finish): the
  jobs go back to wait without spending a retry;
- :class:`Skip`: nothing to send (a muted recipient, a digest with no updates): the jobs end
  ``skipped``, with statements that belong with that (a digest closing its window).
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from tribe_shared.contract import NOTIFICATION_TEMPLATE, DeliveryMethod, JobKind
from tribe_shared.db import DATABASE_DOWN_ERRORS
from tribe_shared.models import Recipient
from tribe_shared.sql.delivery import ClaimedJob
from tribe_worker.digest_build import DigestSkip, DigestWait, compose_digest
from tribe_worker.emails.providers import Addressee, EmailProvider
from tribe_worker.emails.render import RenderError, render_email
from tribe_worker.sms import SmsProvider

log = logging.getLogger(__name__)

#: The Tribe app's page where a recipient mutes these emails (the app serves it, not this API).
MUTE_URL = "{base}/recipients/{recipient_id}/mute"
#: Not a gate of the provider's: a digest waiting for an earlier one of its schedule.
EARLIER_DIGEST_GATE = "earlier_digest"
#: How long such a digest waits before it looks again.
EARLIER_DIGEST_WAIT_SECONDS = 5.0
#: Kinds of job addressed to a recipient, which a mute silences.
TO_RECIPIENTS = (JobKind.NOTIFICATION, JobKind.DIGEST)


@dataclass(frozen=True)
class Send:
    """Make ``call`` (it returns the provider's message id) for ``jobs``."""

    jobs: list[ClaimedJob]
    provider: str
    call: Callable[[], str]
    #: Through the email provider's gates (rate limit, circuit breaker).
    gated: bool = True
    #: Statements recorded together with the jobs ``sent``.
    on_sent: tuple = ()


@dataclass(frozen=True)
class Fail:
    jobs: list[ClaimedJob]
    reason: str
    #: The provider the jobs were for (their delivery log names it).
    provider: str


@dataclass(frozen=True)
class Wait:
    jobs: list[ClaimedJob]
    gate: str
    delay_ms: int


@dataclass(frozen=True)
class Skip:
    jobs: list[ClaimedJob]
    reason: str
    #: Statements recorded together with the jobs ``skipped``.
    also: tuple = ()


Step = Send | Fail | Wait | Skip


@dataclass(frozen=True)
class Composer:
    """What composing needs: the providers (their names, and the calls it prepares), the
    sender, and where the Tribe app is (``PUBLIC_BASE_URL``, None: no links to it)."""

    email: EmailProvider
    sms: SmsProvider
    sender: str
    public_base_url: str | None = None

    def mute_url(self, recipient_id: UUID | None) -> str | None:
        """The link that mutes ``recipient_id`` in the Tribe app, if the app's URL is known."""
        if self.public_base_url is None or recipient_id is None:
            return None
        return MUTE_URL.format(base=self.public_base_url, recipient_id=recipient_id)


def compose(jobs: Sequence[ClaimedJob], composer: Composer, now: datetime) -> list[Step]:
    """The steps that deliver ``jobs``: emails of one batch in one call, each other job alone."""
    recipients = _recipients(jobs)
    muted = [j for j in jobs if j.kind in TO_RECIPIENTS and _muted(recipients, j, now)]
    steps: list[Step] = [Skip(muted, "muted")] if muted else []
    batches: dict[str, list[ClaimedJob]] = {}
    for job in jobs:
        if job in muted:
            continue
        recipient = recipients.get(job.recipient_id)
        if job.kind == JobKind.EMAIL:
            batches.setdefault(job.batch_key or str(job.id), []).append(job)
        elif job.kind == JobKind.DIGEST:
            steps.append(
                _alone([job], composer, lambda j=job, r=recipient: _digest(j, r, composer))
            )
        else:
            steps.append(
                _alone([job], composer, lambda j=job, r=recipient: _notification(j, r, composer))
            )
    emails = [_alone(b, composer, lambda b=b: _email(b, composer)) for b in batches.values()]
    return emails + steps


def _alone(jobs: list[ClaimedJob], composer: Composer, compose_them: Callable[[], Step]) -> Step:
    """``compose_them()``; content no renderer foresaw fails these jobs alone, at once and with
    the reason, never the others of their message. (The database being unreachable is no fault
    of theirs: that goes on up, and the delivery waits.)"""
    try:
        return compose_them()
    except DATABASE_DOWN_ERRORS:
        raise
    except Exception as exc:
        log.exception("job(s) %s cannot be composed", ", ".join(str(j.id) for j in jobs))
        reason = f"The content cannot be rendered ({type(exc).__name__}): {exc}"
        return Fail(jobs, reason, composer.email.name)


def _recipients(jobs: Sequence[ClaimedJob]) -> dict[UUID, Recipient]:
    ids = {job.recipient_id for job in jobs if job.kind in TO_RECIPIENTS}
    if not ids:
        return {}
    return {r.id: r for r in Recipient.select().where(Recipient.id.in_(list(ids)))}


def _muted(recipients: dict[UUID, Recipient], job: ClaimedJob, now: datetime) -> bool:
    muted_until = getattr(recipients.get(job.recipient_id), "muted_until", None)
    return muted_until is not None and muted_until > now


def _email(batch: list[ClaimedJob], composer: Composer) -> Step:
    content = batch[0].content or {}
    try:
        email = render_email(
            content.get("type", ""), content.get("templateData") or {}, content.get("subject")
        )
    except RenderError as exc:
        return Fail(batch, str(exc), composer.email.name)
    to = [Addressee(job.to_email, job.id) for job in batch]
    return Send(batch, composer.email.name, lambda: composer.email.send(email, composer.sender, to))


def _notification(job: ClaimedJob, recipient: Recipient | None, composer: Composer) -> Step:
    content = job.content or {}
    if job.delivery_method == DeliveryMethod.EMAIL:
        address = (recipient.email if recipient else None) or job.to_email
        if not address:
            return Fail([job], "The recipient has no email address", composer.email.name)
        try:
            data = {**content, "mute_url": composer.mute_url(job.recipient_id)}
            email = render_email(NOTIFICATION_TEMPLATE, data, content.get("subject"))
        except RenderError as exc:
            return Fail([job], str(exc), composer.email.name)
        to = [Addressee(address, job.id)]
        send = composer.email.send
        return Send([job], composer.email.name, lambda: send(email, composer.sender, to))
    phone = recipient.phone if recipient else None
    if not phone:
        return Fail([job], "The recipient has no phone number", composer.sms.name)
    text = content.get("text") or " - ".join(
        str(part) for part in (content.get("title"), content.get("body")) if part
    )
    method, sms = job.delivery_method, composer.sms
    return Send([job], sms.name, lambda: sms.send(method, phone, text), gated=False)


def _digest(job: ClaimedJob, recipient: Recipient | None, composer: Composer) -> Step:
    try:
        digest = compose_digest(job, recipient)
    except RenderError as exc:
        return Fail([job], str(exc), composer.email.name)
    if isinstance(digest, DigestWait):
        return Wait([job], EARLIER_DIGEST_GATE, spread_ms(EARLIER_DIGEST_WAIT_SECONDS))
    if isinstance(digest, DigestSkip):
        return Skip([job], digest.reason, () if digest.advance is None else (digest.advance,))
    to = [Addressee(digest.address, job.id)]
    send = composer.email.send
    return Send(
        [job],
        composer.email.name,
        lambda: send(digest.email, composer.sender, to),
        on_sent=(digest.advance,),
    )


def spread_ms(seconds: float) -> int:
    """A wait of at least ``seconds``, in ms, spread so deferred messages do not all come back
    at the same instant."""
    return math.ceil(seconds * 1000 * random.uniform(1.0, 1.2)) + 1
