"""Composing the jobs of the phone channels (SMS, WhatsApp): where each goes, what it says, and
whether WhatsApp will take it.

- The address is the recipient's phone (E.164, checked by the API) as Twilio sees it:
  ``+1555…`` for SMS, ``whatsapp:+1555…`` for WhatsApp; suppressions (a STOP) are keyed by it.
- The text is :mod:`tribe_shared.texts`'s, within three segments; how many it takes is
  recorded on the job (``segments``) with the job ``sent``.
- WhatsApp takes a free-form message only within 24 hours of the recipient's last message to
  us (Twilio's inbound webhook records it, an ``inbound`` event). Outside that window only an
  approved template goes: the job's own (``content.whatsapp_template``: ``name``, the
  template's Content SID, and ``variables``), else the one configured for updates or digests
  (``TWILIO_WHATSAPP_UPDATE_TEMPLATE``, ``…_DIGEST_TEMPLATE``: variables 1 the family or group,
  2 the text). With none the job fails at once, saying so, before any call to Twilio.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tribe_shared import texts
from tribe_shared.contract import DeliveryMethod
from tribe_shared.models import EmailEvent, NotificationJob, Recipient
from tribe_worker.sms import WhatsAppTemplate

#: How long after a recipient's last message WhatsApp takes a free-form message from us.
WHATSAPP_SESSION = timedelta(hours=24)
#: The event a recipient's message to us is stored as.
INBOUND = "inbound"
NO_PHONE = "The recipient has no phone number"


def address(job, recipient: Recipient | None) -> str | None:
    """Where the job's text goes, as Twilio (and the suppression list) name it."""
    phone = recipient.phone if recipient is not None else None
    if not phone:
        return None
    return f"whatsapp:{phone}" if job.delivery_method == DeliveryMethod.WHATSAPP else phone


def notification(job, recipient: Recipient | None, composer, read):
    """The step of an update's (or a notification's) text message."""
    from tribe_worker.compose import Fail

    if not (recipient and recipient.phone):
        return Fail([job], NO_PHONE, composer.sms.name)
    content = job.content or {}
    if content.get("type") == "system":
        text = texts.system_text(content.get("templateData") or {}, content.get("subject"))
    else:
        family = read.family_names.get(job.group_id)
        text = texts.update_text(content, family, channel=job.delivery_method)
    variables = {"1": read.family_names.get(job.group_id) or "Tribe", "2": text}
    template = _template(content, composer.whatsapp_templates.get("update"), variables)
    return _send(job, recipient.phone, text, template, composer, read)


def digest(job, built, composer, read):
    """The step of a digest's text message (``built``: the digest, its updates read)."""
    data = built.data
    updates = data["updates"]
    text = texts.digest_text(
        data["heading"], data["group_name"], updates, data["more"], channel=job.delivery_method
    )
    variables = {"1": data["group_name"] or "Tribe", "2": text}
    template = _template(job.content or {}, composer.whatsapp_templates.get("digest"), variables)
    also = (built.advance, built.started)
    return _send(job, built.address, text, template, composer, read, also=also)


def _send(job, phone: str, text: str, template, composer, read, also: tuple = ()):
    from tribe_worker.compose import Fail, Send

    sms = composer.sms
    method = job.delivery_method
    if method == DeliveryMethod.WHATSAPP and getattr(sms, "configured", True):
        if _in_session(f"whatsapp:{phone}", read.now):
            template = None
        elif template is None:
            return Fail(
                [job],
                "WhatsApp needs an approved template outside the 24-hour window (no message "
                f"from whatsapp:{phone} in the last 24 hours): give the job's content a "
                "whatsapp_template {name, variables}, or set TWILIO_WHATSAPP_UPDATE_TEMPLATE / "
                "TWILIO_WHATSAPP_DIGEST_TEMPLATE",
                sms.name,
            )
        segments = None
    elif method == DeliveryMethod.WHATSAPP:
        segments = None
    else:
        template = None
        segments = texts.count_segments(text).count
    counted = NotificationJob.update(segments=segments).where(NotificationJob.id == job.id)
    return Send(
        [job],
        sms.name,
        lambda: sms.send(method, phone, text, job_id=job.id, template=template),
        lane="sms",
        on_sent=(*also, counted),
    )


def _template(content: dict, configured: str | None, variables: dict) -> WhatsAppTemplate | None:
    given = content.get("whatsapp_template")
    if isinstance(given, dict) and given.get("name"):
        values = {str(k): str(v) for k, v in (given.get("variables") or {}).items()}
        return WhatsAppTemplate(str(given["name"]), values)
    return WhatsAppTemplate(configured, variables) if configured else None


def _in_session(whatsapp_address: str, now: datetime) -> bool:
    """Whether the number wrote to us within the last 24 hours (one indexed read)."""
    return (
        EmailEvent.select(EmailEvent.sg_event_id)
        .where(
            EmailEvent.event == INBOUND,
            EmailEvent.email == whatsapp_address,
            EmailEvent.occurred_at > now - WHATSAPP_SESSION,
        )
        .exists()
    )
