"""The body of every error."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from tribe_api.errors import Code, Kind

CodeName = Literal[tuple(c.value for c in Code)]  # type: ignore[valid-type]
KindName = Literal[tuple(k.value for k in Kind)]  # type: ignore[valid-type]


class FieldError(BaseModel):
    field: str = Field(description="Where: `to`, `emails[3].to`, `templateData`, or `body`")
    kind: KindName
    message: str


class Error(BaseModel):
    title: str
    description: str
    code: CodeName = Field(description="Stable and machine-readable: act on this, not the text")
    errors: list[FieldError] | None = None
