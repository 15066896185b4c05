"""``Idempotency-Key`` on the real gunicorn (the ``web`` fixture): the body the key's hash
reads is put back for the resource, whether it came with a Content-Length or chunked, and a
retry through another worker process gets the first answer."""

from __future__ import annotations

import http.client
import json
import uuid

import pytest

from tests.conftest import JWT_SECRET
from tests.support.email_api import EMAIL, SEND
from tribe_api.auth import mint_service_role_key

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


def _post(base: str, body: bytes, key: str, *, chunked: bool) -> tuple[int, dict, dict]:
    host, port = base.removeprefix("http://").split(":")
    headers = {
        "Authorization": f"Bearer {mint_service_role_key(JWT_SECRET)}",
        "Content-Type": "application/json",
        "Idempotency-Key": key,
    }
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        if chunked:
            connection.request("POST", SEND, body=iter([body[:7], body[7:]]), headers=headers)
        else:
            connection.request("POST", SEND, body=body, headers=headers)
        response = connection.getresponse()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers, json.loads(response.read())
    finally:
        connection.close()


def test_a_keyed_retry_on_the_real_server_gets_the_first_answer_chunked_or_not(web):
    base, *_ = web
    body = json.dumps(EMAIL).encode()
    key = str(uuid.uuid4())

    answers = [_post(base, body, key, chunked=chunked) for chunked in (False, True, False, True)]

    statuses = [status for status, _, _ in answers]
    assert statuses == [202] * 4, answers
    assert len({answer["jobId"] for _, _, answer in answers}) == 1
    assert [headers.get("idempotent-replayed") for _, headers, _ in answers] == [
        None,
        "true",
        "true",
        "true",
    ]


def test_a_chunked_body_is_hashed_as_sent(web):
    base, *_ = web
    key = str(uuid.uuid4())
    first = _post(base, json.dumps(EMAIL).encode(), key, chunked=True)

    other = _post(base, json.dumps({**EMAIL, "subject": "Other"}).encode(), key, chunked=True)

    assert first[0] == 202
    assert (other[0], other[2]["code"]) == (422, "idempotency_conflict")
