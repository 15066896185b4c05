"""The body of every error."""

from __future__ import annotations

from pydantic import (
    BaseModel,
)


class Error(BaseModel):
    title: str
    description: str
    errors: list[dict[str, str]] | None = None
