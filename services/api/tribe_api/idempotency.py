"""Safe retries: a POST sent again with the same ``Idempotency-Key`` gets the first answer.

A client that timed out cannot know whether its request was accepted. Sent with an
``Idempotency-Key`` (1 to 255 printable ASCII characters, its choice: a UUID is usual), the
accepting routes (send-email, send-bulk-email, notifications, updates, digest schedules: the
resources with ``idempotent = True``) answer a retry with the same key and the same request
with the first answer — same status, same body, same job ids, no new rows — for
:data:`KEY_LIFETIME`, marked ``Idempotent-Replayed: true``. The same key with another request
(another body, or another route) is a 422 ``idempotency_conflict``. Keys are per caller (the
token's role and subject): two users' keys never meet.

How: the whole request is one database transaction (:class:`Idempotency`, the last middleware)
whose first statement claims the key, an ``INSERT … ON CONFLICT DO NOTHING`` on the unique
(caller, key); the resource's own transactions become savepoints in it; the answer is stored
in the claimed row and commits with the jobs, all or nothing. The broker messages go after
that commit (:meth:`tribe_shared.outbox.Outbox.send` waits for it), never for rows rolled back.
Only a 2xx answer is stored: a 4xx or 5xx rolls everything back, the key included, so the
client may try again with the same key.

**Two requests with one key at once: the second waits and replays.** The claim's unique index
makes the database do it: the second ``INSERT`` blocks on the first's uncommitted row until
that transaction ends, then finds the committed answer (and replays it) or, if the first was
rolled back, claims the key itself. So the client gets exactly what a retry a moment later
would get, with no new error to handle and no polling; and since a claim is never committed
without its answer, no "in progress" row exists that a crashed process could leave behind to
block the key for a day (a crash rolls the claim back). The wait lasts as long as the first
request, milliseconds. (SQLite, development: the transaction takes the write lock from its
start, so the second waits there.)

Requests without the header pay one header lookup: no query, no transaction.

A job's ``status`` in the answer is the one it was written with (``queued`` when due soon and a
broker is configured): the messages go after the commit, after the answer was stored. If the
broker is down at that moment the job is ``pending`` in the database and the relay hands it
over once it is back, as for any job.
"""

from __future__ import annotations

import hashlib
import io
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import falcon

from tribe_api.auth import Principal
from tribe_api.errors import Code
from tribe_shared.db import locking_transaction
from tribe_shared.models import IdempotencyKey

#: The request header.
HEADER = "Idempotency-Key"
#: The header on a replayed answer.
REPLAYED_HEADER = "Idempotent-Replayed"
#: How long a key's first answer is kept and replayed (then retention deletes it).
KEY_LIFETIME = timedelta(hours=24)
#: Claims of a key whose expired row vanished meanwhile, before giving up with a 409.
_CLAIM_TRIES = 3
#: Longest key accepted (the column's length).
KEY_MAX_LENGTH = 255
#: A key: printable ASCII (no control characters, no spaces at either end), as the OpenAPI
#: document states it; the length is checked apart.
KEY_PATTERN = r"^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$"
_KEY = re.compile(KEY_PATTERN)


def caller_of(principal: Principal) -> str:
    """Whose key it is: the token's role and subject (``authenticated:<uuid>``,
    ``service_role:`` for the project's key, which has no subject)."""
    return f"{principal.role}:{principal.user_id or ''}"


def fingerprint(method: str, path: str, body: bytes) -> str:
    """What makes two requests the same: method, path and the exact body (SHA-256, hex)."""
    digest = hashlib.sha256(f"{method} {path}\n".encode())
    digest.update(body)
    return digest.hexdigest()


@dataclass(frozen=True)
class Answer:
    """A stored first answer."""

    status_code: int
    body: bytes
    location: str | None


class Claim:
    """A key claimed in an open transaction, which holds everything the request writes.

    :meth:`keep` stores the answer and commits it all; :meth:`drop` rolls it all back.
    """

    def __init__(self, transaction, row_id):
        self._transaction = transaction
        self._row_id = row_id

    def keep(self, answer: Answer) -> None:
        try:
            IdempotencyKey.update(
                status_code=answer.status_code,
                response_body=answer.body.decode(),
                location=answer.location,
            ).where(IdempotencyKey.id == self._row_id).execute()
        except BaseException as exc:
            self._transaction.__exit__(type(exc), exc, exc.__traceback__)
            raise
        # Commits (or, if the commit fails, rolls back and raises), then sends the messages the
        # outbox held for the commit.
        self._transaction.__exit__(None, None, None)

    def drop(self) -> None:
        self._transaction.__exit__(_RolledBack, _RolledBack(), None)


class _RolledBack(Exception):
    """Passed to the transaction's exit to make it roll back."""


def claim(caller: str, key: str, request_hash: str, now: datetime) -> Claim | Answer:
    """Claim ``key`` for a new request (a :class:`Claim`, its transaction open), or return the
    answer stored for it (422 ``idempotency_conflict`` if it was stored for another request).

    Waits for a concurrent request holding the same key to finish (see the module's note). An
    expired row not yet deleted by retention counts as absent.
    """
    transaction = locking_transaction()
    transaction.__enter__()
    try:
        for _ in range(_CLAIM_TRIES):
            row_id = _insert(caller, key, request_hash, now)
            if row_id is not None:
                return Claim(transaction, row_id)
            row = IdempotencyKey.get_or_none(
                (IdempotencyKey.caller == caller) & (IdempotencyKey.key == key)
            )
            if row is None:
                continue  # deleted by retention meanwhile
            if row.expires_at <= now:
                IdempotencyKey.delete().where(
                    IdempotencyKey.id == row.id, IdempotencyKey.expires_at <= now
                ).execute()
                continue
            break
        else:  # the row kept vanishing (expired, deleted by retention) while others claimed it
            raise falcon.HTTPConflict(
                title="Idempotency key busy",
                description=f"This {HEADER} is being claimed by another request; try again",
            )
    except BaseException as exc:
        transaction.__exit__(type(exc), exc, exc.__traceback__)
        raise
    transaction.__exit__(None, None, None)  # wrote nothing
    if row.request_hash != request_hash:
        raise falcon.HTTPUnprocessableEntity(
            title="Idempotency key reused",
            description=(
                f"This {HEADER} was used for another request in the last "
                f"{int(KEY_LIFETIME.total_seconds() // 3600)} hours; use a new key for a new "
                "request"
            ),
            code=Code.IDEMPOTENCY_CONFLICT,
        )
    return Answer(row.status_code, row.response_body.encode(), row.location)


def _insert(caller: str, key: str, request_hash: str, now: datetime) -> uuid.UUID | None:
    """The new row's id, or None if the key is taken (after waiting for a concurrent claim)."""
    row_id = uuid.uuid4()
    inserted = (
        IdempotencyKey.insert(
            id=row_id,
            caller=caller,
            key=key,
            request_hash=request_hash,
            created_at=now,
            expires_at=now + KEY_LIFETIME,
        )
        .on_conflict_ignore()
        .as_rowcount()
        .execute()
    )
    return row_id if inserted else None


class Idempotency:
    """Falcon middleware, the last of the chain (it needs ``req.context.principal`` and a
    connection): makes a POST with an ``Idempotency-Key`` to a resource marked ``idempotent``
    one transaction that stores its 2xx answer, or replays the answer stored for the key."""

    def __init__(self, clock: Callable[[], datetime]):
        self._clock = clock

    def process_resource(self, req, resp, resource, params):
        if req.method != "POST" or not getattr(resource, "idempotent", False):
            return
        key = req.get_header(HEADER)
        if key is None:
            return
        if len(key) > KEY_MAX_LENGTH or not _KEY.fullmatch(key):
            raise falcon.HTTPBadRequest(
                title="Invalid Idempotency-Key",
                description=(
                    f"{HEADER} must be 1 to {KEY_MAX_LENGTH} printable ASCII characters, not "
                    "starting or ending with a space"
                ),
                code=Code.BAD_REQUEST,
            )
        body = _read_body(req)
        request_hash = fingerprint(req.method, req.path, body)
        outcome = claim(caller_of(req.context.principal), key, request_hash, self._clock())
        if isinstance(outcome, Claim):
            req.context.idempotency_claim = outcome
            return
        resp.status = outcome.status_code
        resp.content_type = falcon.MEDIA_JSON
        resp.data = outcome.body
        if outcome.location:
            resp.location = outcome.location
        resp.set_header(REPLAYED_HEADER, "true")
        resp.complete = True

    def process_response(self, req, resp, resource, req_succeeded):
        held = getattr(req.context, "idempotency_claim", None)
        if held is None:
            return
        req.context.idempotency_claim = None
        if req_succeeded and 200 <= resp.status_code < 300:
            held.keep(Answer(resp.status_code, resp.render_body() or b"", resp.location))
        else:
            held.drop()


def _read_body(req) -> bytes:
    """The raw body, read once and put back for the resource to parse (the body limit already
    bounded it; a chunked one has its length by now: :class:`tribe_api.middleware.BodyLimit`).
    Nothing before this middleware reads the body, so Falcon wraps the new stream when the
    resource asks for it."""
    length = req.content_length or 0
    body = req.stream.read(length) if length else b""
    req.env["wsgi.input"] = req.stream = io.BytesIO(body)
    return body
