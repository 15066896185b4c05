"""Previews: an email type rendered with given data, and a schedule's next digest."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from tribe_api.schemas.fields import NON_BLANK, HeaderText, JsonObject, LocaleName, RequestModel


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


class TextOut(BaseModel):
    """A text message as it would be sent by SMS: its text and the segments it takes."""

    text: str
    encoding: str = Field(description="GSM-7, or UCS-2 when any character is outside it")
    segments: int


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
    sms: TextOut | None = Field(
        default=None, description="The same digest as a text message (an SMS channel's job)"
    )
