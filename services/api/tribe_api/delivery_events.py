"""What SendGrid's events tell, applied: a verified batch becomes stored events, job delivery
outcomes, suppressed addresses and counted blocks, in one transaction and a few statements.

Every event type SendGrid sends is stored; these change state:

- ``deferred``: outcome deferred (the response);
- ``delivered``, ``open``, ``click``: delivered (the response); the address's counted blocks
  no longer count;
- ``bounce`` with ``type: bounce``: bounced (the reason); the address suppressed, ``bounced``;
- ``bounce`` with ``type: blocked``: bounced (``blocked: <reason>``); a block counted for the
  address, and three in a row (no delivery between) suppress it, ``blocked``;
- ``dropped``: dropped (the reason); the address suppressed when SendGrid dropped it as
  invalid, bounced, reported as spam or unsubscribed;
- ``spamreport``: complained; the address suppressed, ``complained``;
- ``unsubscribe``: delivered; the address suppressed, ``unsubscribed``;
- ``group_unsubscribe`` / ``group_resubscribe``: delivered; the job's recipient leaves (rejoins)
  the emails of the job's group;
- ``processed`` and any other: stored only.

Events are matched to jobs by the ``job_id`` each email carries in its ``custom_args`` (SendGrid
copies them into every event). An event without one, or naming a job that no longer exists, is
kept all the same. Only events not seen before are applied, so a batch posted twice changes
nothing the second time; outcomes never move back (:func:`tribe_shared.contract.outcomes_below`),
so the order events arrive in does not matter.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import falcon
from peewee import OperationalError

from tribe_api.errors import Code
from tribe_shared.contract import OUTCOME_RANK, DeliveryOutcome, SuppressionReason
from tribe_shared.db import database
from tribe_shared.sql.events import (
    BlockRow,
    EventRow,
    OutcomeRow,
    SuppressRow,
    apply_outcome,
    clear_blocks,
    count_blocks,
    store_events,
    suppress,
)

#: PostgreSQL's SQLSTATE for a deadlock.
DEADLOCK = "40P01"
_O = DeliveryOutcome
#: The outcome each event gives its job.
OUTCOMES = {
    "deferred": _O.DEFERRED,
    "delivered": _O.DELIVERED,
    "open": _O.DELIVERED,
    "click": _O.DELIVERED,
    "unsubscribe": _O.DELIVERED,
    "group_unsubscribe": _O.DELIVERED,
    "group_resubscribe": _O.DELIVERED,
    "bounce": _O.BOUNCED,
    "dropped": _O.DROPPED,
    "spamreport": _O.COMPLAINED,
}
#: Events that show an email arrived: an address's counted blocks no longer count.
ARRIVED = frozenset(e for e, outcome in OUTCOMES.items() if outcome == _O.DELIVERED)
#: The event types SendGrid documents (the metric's ``event`` label; others count as ``other``).
KNOWN_EVENTS = frozenset({*OUTCOMES, "processed"})
#: A dropped email's reason → the address's suppression (SendGrid's own reasons).
DROPPED_REASONS = (
    ("invalid smtpapi", None),  # our request's fault, not the address's
    ("bounced address", SuppressionReason.BOUNCED),
    ("spam reporting address", SuppressionReason.COMPLAINED),
    ("unsubscribed address", SuppressionReason.UNSUBSCRIBED),
    ("invalid", SuppressionReason.INVALID),
)
#: What of an event is kept besides its columns (never the IP address or the user agent).
DETAIL_KEYS = (
    "type",
    "reason",
    "response",
    "status",
    "attempt",
    "url",
    "bounce_classification",
    "asm_group_id",
)


def malformed(description: str) -> falcon.HTTPError:
    return falcon.HTTPBadRequest(
        title="Malformed webhook batch", description=description, code=Code.MALFORMED_BATCH
    )


def parse_batch(body: bytes, now: datetime) -> list[EventRow]:
    """The events of a verified body; a 400 (``malformed_batch``) for anything but a JSON list
    of events, each with an ``event``, an ``email`` and a ``timestamp``."""
    try:
        events = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise malformed("The body is not JSON") from None
    if not isinstance(events, list):
        raise malformed("The body is not a list of events")
    rows = []
    for index, event in enumerate(events):
        problem = _problem(event)
        if problem:
            raise malformed(f"Event {index}: {problem}")
        rows.append(_row(event, now))
    return rows


def _problem(event: Any) -> str | None:
    if not isinstance(event, dict):
        return "not an object"
    for name in ("event", "email"):
        if not isinstance(event.get(name), str) or not event[name] or len(event[name]) > 320:
            return f"{name} must be a non-empty string"
    stamp = event.get("timestamp")
    if isinstance(stamp, bool) or not isinstance(stamp, int) or not 0 <= stamp < 2**32:
        return "timestamp must be Unix seconds"
    if "\0" in json.dumps(event):
        return "NUL characters cannot be stored"
    return None


def _row(event: dict, now: datetime) -> EventRow:
    event_id = event.get("sg_event_id")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 100:
        # No id to key it by: the hash of the event itself is stable across SendGrid's retries.
        canonical = json.dumps(event, sort_keys=True, separators=(",", ":")).encode()
        event_id = "sha256:" + hashlib.sha256(canonical).hexdigest()[:64]
    message_id = event.get("sg_message_id")
    return EventRow(
        sg_event_id=event_id,
        job_id=_uuid(event.get("job_id")),
        event=event["event"][:32],
        email=event["email"].strip().lower(),
        occurred_at=datetime.fromtimestamp(event["timestamp"], UTC),
        received_at=now,
        sg_message_id=message_id[:200] if isinstance(message_id, str) else None,
        detail={k: event[k] for k in DETAIL_KEYS if isinstance(event.get(k), str | int)},
    )


def _uuid(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if isinstance(value, str) else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Recorded:
    received: int
    stored: int
    #: New events per event type.
    by_event: dict[str, int]


#: Applies a ``group_unsubscribe`` / ``group_resubscribe`` (recipient, group, now).
GroupAction = Callable[[uuid.UUID, datetime, bool], None]


#: Tries of a batch's transaction that PostgreSQL ended as a deadlock (two batches updating
#: the same jobs in another order, as when SendGrid retries a batch still being applied).
DEADLOCK_TRIES = 3


def record_batch(
    rows: list[EventRow], now: datetime, on_group_event: GroupAction | None = None
) -> Recorded:
    """Store the batch's new events and apply them, all or none."""
    unique = list({row.sg_event_id: row for row in reversed(rows)}.values())[::-1]
    for attempt in range(1, DEADLOCK_TRIES + 1):
        try:
            new = _record(unique, now, on_group_event)
            break
        except OperationalError as exc:
            cause = exc.__cause__ or exc.__context__
            if getattr(cause, "pgcode", None) != DEADLOCK or attempt == DEADLOCK_TRIES:
                raise
    by_event: dict[str, int] = defaultdict(int)
    for row in new:
        by_event[row.event if row.event in KNOWN_EVENTS else "other"] += 1
    return Recorded(len(rows), len(new), dict(by_event))


def _record(rows: list[EventRow], now: datetime, on_group_event) -> list[EventRow]:
    with database.atomic():
        new_ids = store_events(rows)
        new = [row for row in rows if row.sg_event_id in new_ids]
        _apply(new, now)
        if on_group_event is not None:
            for row in new:
                if row.event in ("group_unsubscribe", "group_resubscribe") and row.job_id:
                    on_group_event(row.job_id, now, row.event == "group_unsubscribe")
    return new


def _apply(rows: list[EventRow], now: datetime) -> None:
    """The new events' outcomes (lowest rank first, so the highest ends up), suppressions and
    blocks, each a set-based statement."""
    latest: dict[tuple[str, uuid.UUID], EventRow] = {}
    suppressions: dict[str, SuppressRow] = {}
    blocks: dict[str, list] = {}
    arrived: set[str] = set()
    for row in sorted(rows, key=lambda r: r.occurred_at):
        outcome = OUTCOMES.get(row.event)
        if outcome is not None and row.job_id is not None:
            latest[outcome, row.job_id] = row
        if row.event in ARRIVED:
            arrived.add(row.email)
            blocks.pop(row.email, None)  # blocks before a delivery no longer count
        if _is_block(row):
            blocks.setdefault(row.email, []).append(row)
        else:
            reason = _suppression(row)
            if reason is not None and row.email not in suppressions:
                detail = row.detail.get("reason") or row.detail.get("response")
                suppressions[row.email] = SuppressRow(
                    row.email, reason, detail, f"sendgrid:{row.event}"
                )
    by_outcome: dict[str, list[OutcomeRow]] = defaultdict(list)
    for (outcome, job_id), row in sorted(latest.items(), key=lambda item: str(item[0][1])):
        by_outcome[outcome].append(OutcomeRow(job_id, row.occurred_at, _reason(row)))
    for outcome in sorted(by_outcome, key=lambda o: OUTCOME_RANK[o]):
        apply_outcome(outcome, by_outcome[outcome])
    clear_blocks(sorted(arrived), now)  # then the blocks counted after the last delivery
    count_blocks(
        [
            BlockRow(email, len(found), found[-1].detail.get("reason"))
            for email, found in sorted(blocks.items())
        ],
        now,
    )
    suppress([suppressions[email] for email in sorted(suppressions)], now)


def _is_block(row: EventRow) -> bool:
    return row.event == "bounce" and row.detail.get("type") == "blocked"


def _suppression(row: EventRow) -> SuppressionReason | None:
    if row.event == "bounce":
        return SuppressionReason.BOUNCED
    if row.event == "spamreport":
        return SuppressionReason.COMPLAINED
    if row.event == "unsubscribe":
        return SuppressionReason.UNSUBSCRIBED
    if row.event == "dropped":
        said = str(row.detail.get("reason", "")).lower()
        for words, reason in DROPPED_REASONS:
            if words in said:
                return reason
    return None


def _reason(row: EventRow) -> str | None:
    """The provider's words for an outcome (a bounce says whether it was a block)."""
    detail = row.detail
    said = detail.get("reason") or detail.get("response")
    if row.event == "bounce" and detail.get("type") == "blocked":
        return f"blocked: {said}" if said else "blocked"
    return None if said is None else str(said)[:1000]
