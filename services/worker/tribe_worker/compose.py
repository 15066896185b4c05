"""Composing: what claimed jobs come to, before anything is sent or written.

:func:`compose` reads what it needs (recipients, a digest's updates) and returns one step per
provider call to make or per group of jobs with nothing to send. It writes one thing only: a
digest's AI summary, stored on its job as soon as the model answers, so that a retry reuses it
(:mod:`tribe_worker.summaries`). The delivery loop (:mod:`tribe_worker.delivery`) carries each
step out:

- :class:`Send`: one provider call for one or more jobs (identical emails of a bulk request
  travel together);
- :class:`Fail`: the jobs cannot be sent (no address, content that does not render): they fail
  at once, with the reason;
- :class:`Wait`: not now (a digest whose schedule has an earlier digest still to finish): the
  jobs go back to wait without spending a retry;
- :class:`Skip`: nothing to send (a muted recipient, one who unsubscribed from the group, a
  suppressed address, a digest with no updates): the jobs end ``skipped``, with statements that
  belong with that (a digest closing its window).

Suppressed addresses (``email_suppressions``: a hard bounce, a complaint, an unsubscribe from
everything) are left out before any provider call, one identical email of a bulk batch as much
as a notification: their jobs are skipped, ``suppressed: <why>``. Update and digest emails carry
their recipient's unsubscribe link (:mod:`tribe_shared.emails.unsubscribe_links`) and come from
the group's family when it has a name ("The Smiths on Tribe").
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from tribe_shared.contract import NOTIFICATION_TEMPLATE, DeliveryMethod, JobKind
from tribe_shared.db import DATABASE_DOWN_ERRORS
from tribe_shared.emails.render import RenderError, language_of, render_email
from tribe_shared.emails.unsubscribe_links import MUTE_URL, UnsubscribeLinks
from tribe_shared.models import Group, GroupUnsubscribe, Recipient, Suppression
from tribe_shared.sql.delivery import ClaimedJob
from tribe_worker.digest_build import DigestSkip, DigestWait, compose_digest
from tribe_worker.emails.providers import Addressee, EmailProvider, Sender
from tribe_worker.sms import SmsProvider
from tribe_worker.sms import messages as text_messages
from tribe_worker.summaries import Summarizer

log = logging.getLogger(__name__)

#: Not a gate of the provider's: a digest waiting for an earlier one of its schedule.
EARLIER_DIGEST_GATE = "earlier_digest"
#: How long such a digest waits before it looks again.
EARLIER_DIGEST_WAIT_SECONDS = 5.0
#: Kinds of job addressed to a recipient, which a mute silences.
TO_RECIPIENTS = (JobKind.NOTIFICATION, JobKind.DIGEST)
#: The skip reason of a recipient who unsubscribed from the group's emails.
UNSUBSCRIBED = "unsubscribed from the group's emails"
#: How a family's name shows as the sender ("The Smiths on Tribe").
FAMILY_SENDER = "{family} on Tribe"
#: The same in the other languages of :data:`tribe_shared.emails.render.LANGUAGES`.
FAMILY_SENDERS = {"en": FAMILY_SENDER, "es": "{family} en Tribe"}


@dataclass(frozen=True)
class Send:
    """Make ``call`` (it returns the provider's message id) for ``jobs``."""

    jobs: list[ClaimedJob]
    provider: str
    call: Callable[[], str]
    #: Through the provider's gates (rate limit, circuit breaker).
    gated: bool = True
    #: Whose gates: the email provider's (``email``) or the SMS/WhatsApp provider's (``sms``).
    lane: str = "email"
    #: Statements recorded together with the jobs ``sent``.
    on_sent: tuple = ()
    #: The same email through another provider (failover while the circuit is open); None:
    #: not an email.
    via: Callable[[EmailProvider], str] | None = None


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
    sender, where the Tribe app is (``PUBLIC_BASE_URL``, None: no links to it) and the
    unsubscribe links (None: emails carry none). ``failover`` sends emails while the email
    provider's circuit is open (None: they wait); ``summarizer`` writes the AI summaries of
    digests whose group asked for one (None: plain digests)."""

    email: EmailProvider
    sms: SmsProvider
    sender: Sender
    public_base_url: str | None = None
    links: UnsubscribeLinks | None = None
    failover: EmailProvider | None = None
    summarizer: Summarizer | None = None
    #: WhatsApp templates (Content SIDs) for updates and digests outside the 24-hour window:
    #: keys ``update``, ``digest`` (:mod:`tribe_worker.sms.messages`).
    whatsapp_templates: dict[str, str] = field(default_factory=dict)

    def mute_url(self, recipient_id: UUID | None) -> str | None:
        """The link that mutes ``recipient_id`` in the Tribe app, if the app's URL is known."""
        if self.public_base_url is None or recipient_id is None:
            return None
        return MUTE_URL.format(base=self.public_base_url, recipient_id=recipient_id)


@dataclass(frozen=True)
class _Read:
    """What composing reads once for all the claimed jobs."""

    recipients: dict[UUID, Recipient]
    family_names: dict[UUID, str]
    now: datetime


def compose(jobs: Sequence[ClaimedJob], composer: Composer, now: datetime) -> list[Step]:
    """The steps that deliver ``jobs``: emails of one batch in one call, each other job alone;
    the jobs with nothing to send skipped first, each reason one step."""
    read = _Read(_recipients(jobs), _family_names(jobs), now)
    skipped = _skipped(jobs, read)
    steps: list[Step] = [Skip(held, reason) for reason, held in skipped.items()]
    held = {job.id for group in skipped.values() for job in group}
    batches: dict[str, list[ClaimedJob]] = {}
    for job in jobs:
        if job.id in held:
            continue
        recipient = read.recipients.get(job.recipient_id)
        if job.kind == JobKind.EMAIL:
            batches.setdefault(job.batch_key or str(job.id), []).append(job)
        elif job.kind == JobKind.DIGEST:
            steps.append(
                _alone([job], composer, lambda j=job, r=recipient: _digest(j, r, composer, read))
            )
        else:
            steps.append(
                _alone(
                    [job], composer, lambda j=job, r=recipient: _notification(j, r, composer, read)
                )
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


def _skipped(jobs: Sequence[ClaimedJob], read: _Read) -> dict[str, list[ClaimedJob]]:
    """The jobs with nothing to send, by reason: a muted recipient, one unsubscribed from the
    job's group, a suppressed address."""
    skipped: dict[str, list[ClaimedJob]] = {}
    # Leaving a group's emails stops its emails only: texts never ask.
    left = _unsubscribed([j for j in jobs if _to_a_group_by_email(j)])
    suppressed = _suppressed({_address(j, read.recipients) for j in jobs} - {None})
    for job in jobs:
        reason = None
        if job.kind in TO_RECIPIENTS and _muted(read.recipients, job, read.now):
            reason = "muted"
        elif _to_a_group_by_email(job) and (job.recipient_id, job.group_id) in left:
            reason = UNSUBSCRIBED
        else:
            why = suppressed.get(_address(job, read.recipients))
            reason = f"suppressed: {why}" if why else None
        if reason is not None:
            skipped.setdefault(reason, []).append(job)
    return skipped


def _address(job: ClaimedJob, recipients: dict[UUID, Recipient]) -> str | None:
    """Where the job's message would go, as suppressions are keyed: an email address in lower
    case, a phone number as Twilio sees it (``+1555…``, ``whatsapp:+1555…``); None: none."""
    if job.delivery_method != DeliveryMethod.EMAIL:
        return text_messages.address(job, recipients.get(job.recipient_id))
    recipient = recipients.get(job.recipient_id)
    address = job.to_email if job.kind == JobKind.EMAIL else None
    if job.kind != JobKind.EMAIL:
        address = (recipient.email if recipient else None) or (
            job.to_email if job.kind == JobKind.NOTIFICATION else None
        )
    return address.strip().lower() if address else None


def _suppressed(addresses: set[str]) -> dict[str, str]:
    """The suppressed ones among ``addresses``, with why: one indexed read."""
    if not addresses:
        return {}
    rows = Suppression.select(Suppression.email, Suppression.reason).where(
        Suppression.email.in_(list(addresses)), Suppression.suppressed_at.is_null(False)
    )
    return {email: reason for email, reason in rows.tuples()}


def _to_a_group_by_email(job: ClaimedJob) -> bool:
    return job.kind in TO_RECIPIENTS and job.delivery_method == DeliveryMethod.EMAIL


def _unsubscribed(jobs: Sequence[ClaimedJob]) -> set[tuple[UUID, UUID]]:
    """The (recipient, group) pairs among ``jobs`` whose recipient left the group's emails."""
    recipients = {j.recipient_id for j in jobs if j.recipient_id and j.group_id}
    if not recipients:
        return set()
    rows = GroupUnsubscribe.select(GroupUnsubscribe.recipient, GroupUnsubscribe.group).where(
        GroupUnsubscribe.recipient.in_(list(recipients))
    )
    return set(rows.tuples())


def _family_names(jobs: Sequence[ClaimedJob]) -> dict[UUID, str]:
    groups = {j.group_id for j in jobs if j.kind in TO_RECIPIENTS and j.group_id}
    if not groups:
        return {}
    rows = Group.select(Group.id, Group.family_name).where(
        Group.id.in_(list(groups)), Group.family_name.is_null(False)
    )
    return dict(rows.tuples())


def _to_recipient(job: ClaimedJob, address: str, composer: Composer, read: _Read):
    """The addressee of an update or digest email (with their unsubscribe headers), its sender
    (the family's name when the group has one) and the links its body shows."""
    links = {"mute_url": composer.mute_url(job.recipient_id), "unsubscribe_url": None}
    headers: tuple = ()
    if composer.links is not None and job.recipient_id and job.group_id:
        link = composer.links.link(job.recipient_id, job.group_id, read.now)
        links["unsubscribe_url"], headers = link.url, link.headers
    family = read.family_names.get(job.group_id)
    recipient = read.recipients.get(job.recipient_id)
    shown_as = FAMILY_SENDERS[language_of(recipient.locale if recipient else None)]
    sender = composer.sender.named(shown_as.format(family=family) if family else None)
    return Addressee(address, job.id, headers), sender, links


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
            content.get("type", ""),
            content.get("templateData") or {},
            content.get("subject"),
            locale=content.get("locale"),
        )
    except RenderError as exc:
        return Fail(batch, str(exc), composer.email.name)
    to = [Addressee(job.to_email, job.id) for job in batch]
    return _send_email(batch, composer, email, composer.sender, to)


def _notification(job: ClaimedJob, recipient: Recipient | None, composer: Composer, read) -> Step:
    content = job.content or {}
    if job.delivery_method == DeliveryMethod.EMAIL:
        address = (recipient.email if recipient else None) or job.to_email
        if not address:
            return Fail([job], "The recipient has no email address", composer.email.name)
        addressee, sender, links = _to_recipient(job, address, composer, read)
        try:
            data = {**content, **links}
            locale = recipient.locale if recipient else None
            email = render_email(NOTIFICATION_TEMPLATE, data, content.get("subject"), locale=locale)
        except RenderError as exc:
            return Fail([job], str(exc), composer.email.name)
        return _send_email([job], composer, email, sender, [addressee])
    return text_messages.notification(job, recipient, composer, read)


def _digest(job: ClaimedJob, recipient: Recipient | None, composer: Composer, read) -> Step:
    address = recipient.email if recipient and recipient.email else ""
    addressee, sender, links = _to_recipient(job, address, composer, read)
    try:
        digest = compose_digest(
            job, recipient, links, composer.summarizer, channel=job.delivery_method
        )
    except RenderError as exc:
        return Fail([job], str(exc), composer.email.name)
    if isinstance(digest, DigestWait):
        return Wait([job], EARLIER_DIGEST_GATE, spread_ms(EARLIER_DIGEST_WAIT_SECONDS))
    if isinstance(digest, DigestSkip):
        return Skip([job], digest.reason, () if digest.advance is None else (digest.advance,))
    if job.delivery_method != DeliveryMethod.EMAIL:
        return text_messages.digest(job, digest, composer, read)
    to = [Addressee(digest.address, job.id, addressee.headers)]
    on_sent = (digest.advance, digest.started)
    return _send_email([job], composer, digest.email, sender, to, on_sent=on_sent)


def _send_email(jobs, composer: Composer, email, sender: Sender, to, on_sent=()) -> Send:
    """The provider call that sends ``email`` to ``to``, and the same through any provider."""

    def via(provider: EmailProvider) -> str:
        return provider.send(email, sender, to)

    primary = composer.email
    return Send(jobs, primary.name, lambda: via(primary), on_sent=on_sent, via=via)


def spread_ms(seconds: float) -> int:
    """A wait of at least ``seconds``, in ms, spread so deferred messages do not all come back
    at the same instant."""
    return math.ceil(seconds * 1000 * random.uniform(1.0, 1.2)) + 1
