"""After the send: the webhook's answer, suppressions, and a job's event timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from tribe_api.schemas.fields import RequestModel
from tribe_shared.contract import SuppressionReason

ReasonName = Literal[tuple(r.value for r in SuppressionReason)]  # type: ignore[valid-type]


class WebhookReceived(BaseModel):
    received: int
    stored: int
    duplicates: int = Field(description="Events stored before (SendGrid posted them again)")


class SuppressionQuery(RequestModel):
    reason: ReasonName | None = None
    email: str | None = Field(default=None, max_length=320)
    limit: int = Field(default=50, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=1_000_000)


class SuppressionOut(BaseModel):
    email: str
    reason: str | None
    detail: str | None
    source: str | None
    suppressed_at: datetime | None


class SuppressionList(BaseModel):
    suppressions: list[SuppressionOut]
    total: int


class EmailEventOut(BaseModel):
    event: str
    occurred_at: datetime
    received_at: datetime
    email: str
    sg_event_id: str
    sg_message_id: str | None
    detail: dict


class RecipientSuppression(BaseModel):
    reason: str | None
    suppressed_at: datetime | None
