"""The field types request bodies share, and the base of every request model.

Request models forbid unknown fields; every string that can reach an email header refuses
CR, LF and NUL, and no stored string may hold NUL.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, Literal

from babel.localedata import locale_identifiers
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    PlainValidator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from typing_extensions import TypeAliasType

from tribe_shared.contract import (
    EMAIL_TYPES,
    ContentType,
    DeliveryMethod,
    JobStatus,
    NotificationType,
    Urgency,
)
from tribe_shared.emails.render import LANGUAGES


def _no_control_characters(value: str) -> str:
    if any(c in value for c in "\r\n\0"):
        raise ValueError("must not contain line breaks or NUL characters")
    return value


#: Free-form JSON (an email's ``templateData``, a notification's ``content``) nests at most this
#: deep and is at most about this large: every later read of the job renders and validates it.
MAX_JSON_DEPTH = 32
MAX_JSON_BYTES = 64 * 1024


def _bounded_json(value: Any) -> Any:
    """Refuse NUL in any string or key (PostgreSQL cannot store it in JSON text), nesting deeper
    than :data:`MAX_JSON_DEPTH` and more than about :data:`MAX_JSON_BYTES`; without recursion,
    so no depth can overflow the stack."""
    size, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"must not nest more than {MAX_JSON_DEPTH} levels deep")
        if isinstance(item, str):
            if "\0" in item:
                raise ValueError("must not contain NUL characters")
            size += len(item) + 2
        elif isinstance(item, dict):
            pending.extend((key, depth) for key in item)
            pending.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            pending.extend((child, depth + 1) for child in item)
        size += 8
        if size > MAX_JSON_BYTES:
            raise ValueError(f"must be at most {MAX_JSON_BYTES // 1024} KiB of JSON")
    return value


#: RFC 3339 (what the document's ``format: date-time`` means): date, time and offset.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)


def _rfc3339_text(value: Any) -> Any:
    """A date-time in a body is RFC 3339 text, as documented: never a number of seconds, nor
    ``"0"`` or another form pydantic would also read."""
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("must be an ISO 8601 date-time with a timezone, e.g. 2026-01-31T09:00:00Z")
    return value


#: What JSON Schema's ``\s`` (ECMAScript's) matches but a line break: what is stripped from
#: the ends of a request's strings. Python's ``str.strip`` strips more (U+0085, U+001C-U+001F),
#: which would make a name of one such character blank here and valid in the document.
STRIPPED = (
    " \t\v\f\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
#: A header line with something in it: not only whitespace, no CR, LF or NUL.
NON_BLANK_LINE = r"^[^\r\n\x00]*[^\s\x00][^\r\n\x00]*$"

#: Line breaks are not stripped, so a trailing one is refused, exactly as the pattern in the
#: document says.
HeaderText = Annotated[
    str,
    BeforeValidator(
        lambda value: _no_control_characters(value) if isinstance(value, str) else value
    ),
    Field(json_schema_extra={"pattern": r"^[^\r\n\x00]*$"}),
]


def _representable(value: datetime) -> datetime:
    """An instant the databases can hold in UTC: ``9999-12-31T23:59:59-01:00`` is past
    year 9999 there."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError(
            "out_of_range", "Must fall within the years 1 to 9999 in UTC"
        ) from None
    return value


#: An aware date-time given as ISO 8601 text (pydantic would also take a number).
Instant = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text), AfterValidator(_representable)]


def _number_only(value: Any) -> Any:
    """JSON's integers (``5``, or ``5.0`` as JSON Schema counts it), never ``"5"`` or ``true``."""
    if isinstance(value, str | bool):
        raise ValueError("must be a JSON integer")
    return value


#: Body integers and booleans are JSON's own, as the document says: not "5", "true" or 1.
#: (The number check comes after the bounds so that the document keeps them.)
JsonInt = BeforeValidator(_number_only)
BodyBool = Annotated[bool, Field(strict=True)]


def _json_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    return _bounded_json(value)


NUL_FREE = r"^[^\x00]*$"
#: How the document describes a JSON object whose keys and strings hold no NUL, at any depth.
_NUL_FREE_KEYS = Field(json_schema_extra={"propertyNames": {"pattern": NUL_FREE}})
_NulFreeJson = TypeAliasType(
    "_NulFreeJson",
    Annotated[str, Field(pattern=NUL_FREE)]
    | int
    | float
    | bool
    | list["_NulFreeJson"]
    | Annotated[dict[str, "_NulFreeJson"], _NUL_FREE_KEYS]
    | None,
)
_NulFreeObject = Annotated[dict[str, _NulFreeJson], _NUL_FREE_KEYS]
#: Any JSON object, kept as given (strings are not stripped), that PostgreSQL can store.
JsonObject = Annotated[
    dict[str, Any],
    PlainValidator(_json_object, json_schema_input_type=_NulFreeObject),
    Field(
        description=f"Any JSON object, at most {MAX_JSON_DEPTH} levels deep and "
        f"{MAX_JSON_BYTES // 1024} KiB"
    ),
]

#: The special-use domains (RFC 6761) that email addresses are refused for, as email-validator
#: does: ``a@b.test``, ``a@localhost``...
_SPECIAL_USE = ("arpa", "invalid", "local", "localhost", "onion", "test")


def _any_case(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" for c in word)


#: An address, not one at a special-use domain (what email-validator refuses beyond the format).
Address = Annotated[
    EmailStr,
    Field(
        json_schema_extra={
            "pattern": rf"^(?!.*[@.]({'|'.join(_any_case(d) for d in _SPECIAL_USE)})\.?$)"
        }
    ),
]
EmailType = Literal[EMAIL_TYPES]  # type: ignore[valid-type]
UrgencyName = Literal[tuple(u.value for u in Urgency)]  # type: ignore[valid-type]
StatusName = Literal[tuple(s.value for s in JobStatus)]  # type: ignore[valid-type]
MethodName = Literal[tuple(m.value for m in DeliveryMethod)]  # type: ignore[valid-type]
NotificationTypeName = Literal[tuple(t.value for t in NotificationType)]  # type: ignore[valid-type]

ContentTypeName = Literal[tuple(c.value for c in ContentType)]  # type: ignore[valid-type]

#: The furthest ahead a notification can be scheduled (one year).
MAX_DELAY_MINUTES = 366 * 24 * 60


class RequestModel(BaseModel):
    """A request body or query: no unknown field, strings without surrounding whitespace."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _strip(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        return {k: v.strip(STRIPPED) if isinstance(v, str) else v for k, v in data.items()}


#: A header line that must say something (a name, a subject).
NON_BLANK = {"json_schema_extra": {"pattern": NON_BLANK_LINE}}


def not_null(*names: str):
    """Document optional fields of a PATCH as never null: the API refuses a null (422) where
    it cannot clear the field, but pydantic needs ``None`` as the "not given" default."""

    def strip_null(schema: dict[str, Any]) -> None:
        for name in names:
            field = schema["properties"][name]
            (kept,) = [option for option in field.pop("anyOf") if option != {"type": "null"}]
            field.pop("default", None)
            field.update({**kept, **field})  # the field's own keywords over its type's

    return strip_null


# --- Content (issue #18): a recipient's locale ------------------------------------------------


@cache
def locale_names() -> tuple[str, ...]:
    """Every locale Babel knows, BCP 47 style (``es``, ``es-MX``, ``sr-Latn-BA``)."""
    return tuple(sorted(name.replace("_", "-") for name in locale_identifiers()))


def _known_locale(value: str) -> str:
    if value not in frozenset(locale_names()):
        raise ValueError(f"{value!r} is not a known locale (e.g. 'en', 'es', 'es-MX')")
    return value


#: A recipient's language and region, BCP 47 style, one Babel knows (the document lists them);
#: emails are written in its language when we write it (``LANGUAGES``), else in English.
LocaleName = Annotated[
    str,
    Field(
        max_length=35,
        examples=["es-MX"],
        description=f"A locale such as `es` or `es-MX`; emails are written in {LANGUAGES}, "
        "other languages get English",
        json_schema_extra={"enum": list(locale_names())},
    ),
    AfterValidator(_known_locale),
]
