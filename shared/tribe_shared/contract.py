"""The vocabulary both services agree on: job statuses, kinds, queues, actor names, and what a
job's ``content`` holds for each kind.

Defined once here; the API and the worker import these names and never spell the strings.
"""

from enum import StrEnum
from typing import NotRequired, TypedDict


class JobStatus(StrEnum):
    PENDING = "pending"  # stored, not yet on the broker
    QUEUED = "queued"  # handed to the broker
    PROCESSING = "processing"  # claimed by a worker
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"  # nothing to do: muted or suppressed recipient, empty digest


#: A worker may claim a job only from these statuses.
CLAIMABLE_STATUSES = (JobStatus.PENDING, JobStatus.QUEUED)


class JobKind(StrEnum):
    """What a job does, which decides the actor that runs it."""

    EMAIL = "email"  # an ad-hoc email from send-email / send-bulk-email
    NOTIFICATION = "notification"  # a notification to a recipient (dispatch)
    DIGEST = "digest"  # a digest email built from a group's updates


class NotificationType(StrEnum):
    IMMEDIATE = "immediate"
    DIGEST = "digest"


class Urgency(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


#: Handing-over order: most urgent first.
URGENCY_RANK = {Urgency.URGENT: 0, Urgency.HIGH: 1, Urgency.NORMAL: 2, Urgency.LOW: 3}


class DeliveryMethod(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    WHATSAPP = "whatsapp"


class Frequency(StrEnum):
    """How often a digest goes out; it decides what a schedule's ``delivery_day`` means."""

    DAILY = "daily"  # no delivery_day
    WEEKLY = "weekly"  # delivery_day: ISO weekday, 1 = Monday ... 7 = Sunday
    MONTHLY = "monthly"  # delivery_day: 1-31, the month's last day when the month is shorter


class ContentType(StrEnum):
    """What an update holds; a digest schedule includes some of these."""

    PHOTO = "photo"
    MILESTONE = "milestone"
    TEXT = "text"
    VIDEO = "video"


class DeliveryStatus(StrEnum):
    """Outcome of one delivery attempt, as written to the delivery log."""

    SENT = "sent"
    TRANSIENT_FAILURE = "transient_failure"  # will be retried
    PERMANENT_FAILURE = "permanent_failure"


class DeliveryOutcome(StrEnum):
    """What became of a ``sent`` email after the provider accepted it, from its events.

    The job's ``status`` stays ``sent``; the outcome only ever moves forward, in the order of
    :data:`OUTCOME_RANK` (a ``delivered`` arriving after a ``bounce`` changes nothing).
    """

    DEFERRED = "deferred"  # the receiving server asked the provider to try again later
    DELIVERED = "delivered"  # accepted by the receiving server (or opened, clicked)
    BOUNCED = "bounced"  # refused by the receiving server (a bounce, or a block)
    DROPPED = "dropped"  # the provider did not even try (a suppressed or invalid address)
    COMPLAINED = "complained"  # delivered, then reported as spam


#: An outcome replaces only outcomes of a lower rank: a later event never moves a job back.
OUTCOME_RANK = {
    DeliveryOutcome.DEFERRED: 1,
    DeliveryOutcome.DELIVERED: 2,
    DeliveryOutcome.BOUNCED: 3,
    DeliveryOutcome.DROPPED: 3,
    DeliveryOutcome.COMPLAINED: 4,
}


def outcomes_below(outcome: str) -> tuple[str, ...]:
    """The outcomes ``outcome`` may replace (a job without one may always take it)."""
    rank = OUTCOME_RANK[DeliveryOutcome(outcome)]
    return tuple(o.value for o, r in OUTCOME_RANK.items() if r < rank)


class SuppressionReason(StrEnum):
    """Why an address gets no more email: jobs to it end ``skipped``, ``suppressed: <why>``."""

    BOUNCED = "bounced"  # a hard bounce: the address does not exist
    INVALID = "invalid"  # the provider dropped it as invalid
    COMPLAINED = "complained"  # the recipient reported an email as spam
    UNSUBSCRIBED = "unsubscribed"  # the recipient asked for no more Tribe email at all
    BLOCKED = "blocked"  # repeated blocks (soft bounces) with no delivery between them


#: Email templates the worker can render; the API refuses any other ``type``.
EMAIL_TYPES = ("system", "welcome")
#: The template of a notification email (an update, a message to a recipient).
NOTIFICATION_TEMPLATE = "notification"
#: The template of a digest email (a group's updates over a day, a week or a month).
DIGEST_TEMPLATE = "digest"


class EmailContent(TypedDict):
    """The content of an ad-hoc email job (send-email): a template rendered with its data."""

    type: str  # one of EMAIL_TYPES
    subject: str | None  # overrides the template's subject
    templateData: dict
    locale: NotRequired[str]  # the language it is written in (issue #18); default English


class NotificationContent(TypedDict, total=False):
    """The content of a notification job: an update's, or what ``POST /api/notifications`` gave.

    Rendered with :data:`NOTIFICATION_TEMPLATE` for email; SMS sends ``text`` (else the title
    and body).
    """

    title: str | None
    body: str
    child_name: str | None
    content_type: str
    media_urls: list[str]
    update_id: str
    subject: str
    text: str


class DigestContent(TypedDict):
    """The content of a digest job: the end of the window of updates it covers."""

    window_end: str  # ISO 8601, UTC


#: SendGrid accepts at most this many personalizations in one request.
MAX_PERSONALIZATIONS = 1000
#: Notifications of one update travel this many to a message (each still sent on its own):
#: a big fan-out is a few hundred broker messages, not thousands.
NOTIFICATIONS_PER_MESSAGE = 50


class Queue(StrEnum):
    EMAILS = "emails"
    #: The fast lane: its own queue, so urgent work never waits behind a backlog in Redis,
    #: and actors of a higher priority, so it goes first among what a worker has prefetched.
    URGENT = "emails_urgent"
    MAINTENANCE = "maintenance"


class Actor(StrEnum):
    SEND_EMAIL = "send_email"
    SEND_EMAIL_BATCH = "send_email_batch"
    DISPATCH_NOTIFICATION = "dispatch_notification"
    BUILD_DIGEST = "build_digest"
    MARK_JOB_FAILED = "mark_job_failed"
    RELAY_PENDING_JOBS = "relay_pending_jobs"
    REAP_STUCK_JOBS = "reap_stuck_jobs"
    SCHEDULE_DUE_DIGESTS = "schedule_due_digests"
    APPLY_RETENTION = "apply_retention"
    RUN_BULK_ACTION = "run_bulk_action"


#: The scheduler's tasks: periodic actors, each ticked every minute. Each records its last
#: successful run (:func:`scheduler_runs_key`), watched by the API's health and metrics.
PERIODIC_ACTORS = (
    Actor.RELAY_PENDING_JOBS,
    Actor.REAP_STUCK_JOBS,
    Actor.SCHEDULE_DUE_DIGESTS,
    Actor.APPLY_RETENTION,
)


#: The delivery actors, each declared twice: as named on ``emails`` and with this suffix on
#: the urgent lane.
DELIVERY_ACTORS = (
    Actor.SEND_EMAIL,
    Actor.SEND_EMAIL_BATCH,
    Actor.DISPATCH_NOTIFICATION,
    Actor.BUILD_DIGEST,
)
URGENT_SUFFIX = "_urgent"
#: Urgencies that travel on the fast lane.
FAST_LANE = (Urgency.URGENT, Urgency.HIGH)

_KIND_ACTORS = {
    JobKind.EMAIL: Actor.SEND_EMAIL,
    JobKind.NOTIFICATION: Actor.DISPATCH_NOTIFICATION,
    JobKind.DIGEST: Actor.BUILD_DIGEST,
}


def route(kind: str, urgency: str, *, batch: bool = False) -> tuple[str, str]:
    """The (actor name, queue) a job's message goes to (a batch of emails has its own actor)."""
    batch_of_emails = batch and kind == JobKind.EMAIL
    actor = Actor.SEND_EMAIL_BATCH if batch_of_emails else _KIND_ACTORS[JobKind(kind)]
    if urgency in FAST_LANE:
        return actor.value + URGENT_SUFFIX, Queue.URGENT.value
    return actor.value, Queue.EMAILS.value


def scheduler_runs_key(namespace: str) -> str:
    """The Redis hash where each periodic task records its last successful run: field the
    actor name (one of :data:`PERIODIC_ACTORS`), value the unix time it finished."""
    return f"{namespace}:scheduler-last-run"


def worker_heartbeats_key(namespace: str) -> str:
    """The Redis sorted set where each worker process writes its heartbeat: member
    ``<hostname>:<pid>``, score the unix time of its last beat (every 15 s)."""
    return f"{namespace}:worker-heartbeats"
