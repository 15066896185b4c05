"""Previews: an email type rendered with given data, and a schedule's next digest."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from babel import Locale, UnknownLocaleError
from pydantic import AfterValidator, BaseModel, Field

from tribe_api.schemas.fields import NON_BLANK, HeaderText, JsonObject, RequestModel
from tribe_shared.emails.render import LANGUAGES


def _known_locale(value: str) -> str:
    """A locale Babel knows (``es``, ``es-MX``, ``en_GB``), as given."""
    try:
        Locale.parse(value.replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        raise ValueError(f"{value!r} is not a known locale (e.g. 'en', 'es', 'es-MX')") from None
    return value


#: A recipient's language and region, BCP 47 style; emails are written in its language when we
#: write it (:data:`~tribe_shared.emails.render.LANGUAGES`), else in English.
LocaleName = Annotated[
    str,
    Field(
        min_length=2,
        max_length=35,
        pattern=r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*$",
        description=f"A locale such as `es` or `es-MX`; emails are written in {LANGUAGES}",
    ),
    AfterValidator(_known_locale),
]


class TemplatePreviewIn(RequestModel):
    templateData: JsonObject = Field(default_factory=dict)
    subject: HeaderText | None = Field(default=None, min_length=1, max_length=998, **NON_BLANK)
    locale: LocaleName | None = None


class RenderedOut(BaseModel):
    """An email as it would be sent: its subject, HTML part and text part."""

    subject: str
    html: str
    text: str
    language: str = Field(description="The language it is written in")


class TemplatePreviewOut(RenderedOut):
    type: str


class DigestPreviewOut(BaseModel):
    """What the schedule's next digest would hold if it were built now. Nothing is sent or
    moved; ``would_send`` false says why there would be no email (``reason``)."""

    schedule_id: UUID
    would_send: bool
    reason: str | None = None
    window_start: datetime
    window_end: datetime
    updates: int = Field(description="Updates of the window the schedule shows")
    shown: int = Field(description="Of those, the newest the digest lists")
    ai_summary: bool = Field(
        description="The group asked for a summary: the sent digest carries one at its top "
        "(a preview never asks the model)"
    )
    email: RenderedOut | None = None
