"""What the providers reported and who hears nothing more: provider events, suppressed
addresses, and recipients unsubscribed from a group."""

from __future__ import annotations

from peewee import CharField, ForeignKeyField, IntegerField, JSONField, Model, TextField, UUIDField

from tribe_shared.db import database
from tribe_shared.models.base import BaseModel, UTCDateTimeField, utcnow
from tribe_shared.models.digests import DigestSchedule
from tribe_shared.models.family import Group, Recipient


class EmailEvent(Model):
    """One event the email provider reported (SendGrid's event webhook), kept as received.

    Keyed by the provider's own event id, so a batch posted again stores nothing twice. The
    job is a plain column, not a foreign key: events of jobs that no longer exist are kept.
    """

    sg_event_id = CharField(max_length=100, primary_key=True)
    job_id = UUIDField(null=True, index=False)
    event = CharField(max_length=32)
    email = CharField(max_length=320)
    occurred_at = UTCDateTimeField()
    received_at = UTCDateTimeField(default=utcnow)
    sg_message_id = CharField(max_length=200, null=True)
    #: What the provider said besides: reason, response, bounce type, status, url...
    detail = JSONField(default=dict)

    class Meta:
        database = database
        table_name = "email_events"


EmailEvent.add_index(
    EmailEvent.index(
        EmailEvent.job_id,
        EmailEvent.occurred_at,
        name="email_events_job_id_occurred_at",
        where=EmailEvent.job_id.is_null(False),
    )
)


# A number's inbound messages, latest first (migration 0012): WhatsApp's 24-hour session.
EmailEvent.add_index(
    EmailEvent.index(
        EmailEvent.email,
        EmailEvent.occurred_at,
        name="email_events_inbound_email_occurred_at",
        where=EmailEvent.event == "inbound",
    )
)


class Suppression(Model):
    """An address's standing with the provider: suppressed (``suppressed_at`` set, no more
    messages to it) or watched. The address is an email address, or a phone number as Twilio
    sees it (``+15551234567`` for SMS, ``whatsapp:+15551234567``), suppressed by a STOP
    (migration 0012). Blocks are counted (``soft_bounces``) until a delivery clears them."""

    #: Lower case: addresses are compared that way.
    email = CharField(max_length=320, primary_key=True)
    reason = CharField(max_length=20, null=True)
    #: The provider's words, or what the recipient did.
    detail = TextField(null=True)
    #: Where it came from: ``sendgrid:<event>``, ``unsubscribe`` or ``twilio:<keyword>``.
    source = CharField(max_length=40, null=True)
    soft_bounces = IntegerField(default=0)
    suppressed_at = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        database = database
        table_name = "email_suppressions"
        indexes = ((("suppressed_at",), False),)


class GroupUnsubscribe(BaseModel):
    """A recipient who unsubscribed from one group's emails (one-click, or the page).

    The recipient gets no update or digest email of the group until it is undone, whatever
    their memberships and schedules say. ``paused_schedule`` is the digest schedule the
    unsubscribe paused, resumed by the undo.
    """

    recipient = ForeignKeyField(Recipient, backref="unsubscribes", on_delete="CASCADE", index=False)
    group = ForeignKeyField(Group, backref="unsubscribes", on_delete="CASCADE")
    paused_schedule = ForeignKeyField(
        DigestSchedule, null=True, backref="unsubscribes", on_delete="SET NULL", index=False
    )
    source = CharField(max_length=20)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "group_unsubscribes"
        indexes = ((("recipient", "group"), True),)
