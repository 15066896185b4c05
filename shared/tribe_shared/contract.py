"""The vocabulary both services agree on: job statuses, kinds, queues and actor names.

Defined once here; the API and the worker import these names and never spell the strings.
"""

from enum import StrEnum


class JobStatus(StrEnum):
    PENDING = "pending"  # stored, not yet on the broker
    QUEUED = "queued"  # handed to the broker
    PROCESSING = "processing"  # claimed by a worker
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"  # nothing to do: muted recipient, empty digest


#: A worker may claim a job only from these statuses.
CLAIMABLE_STATUSES = (JobStatus.PENDING, JobStatus.QUEUED)
#: A job in one of these statuses never changes again (except a manual retry of a failed one).
FINAL_STATUSES = (JobStatus.SENT, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.SKIPPED)


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


class DeliveryStatus(StrEnum):
    """Outcome of one delivery attempt, as written to the delivery log."""

    SENT = "sent"
    TRANSIENT_FAILURE = "transient_failure"  # will be retried
    PERMANENT_FAILURE = "permanent_failure"


#: Email templates the worker can render; the API refuses any other ``type``.
EMAIL_TYPES = ("system", "welcome")

#: SendGrid accepts at most this many personalizations in one request.
MAX_PERSONALIZATIONS = 1000


class Queue(StrEnum):
    EMAILS = "emails"
    MAINTENANCE = "maintenance"


class Actor(StrEnum):
    SEND_EMAIL = "send_email"
    SEND_EMAIL_BATCH = "send_email_batch"
    MARK_JOB_FAILED = "mark_job_failed"
    RELAY_PENDING_JOBS = "relay_pending_jobs"


#: Where each kind of job goes: (actor, queue). Batches of ad-hoc emails use SEND_EMAIL_BATCH.
ROUTES = {
    JobKind.EMAIL: (Actor.SEND_EMAIL, Queue.EMAILS),
}
