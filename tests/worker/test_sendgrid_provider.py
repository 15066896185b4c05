"""The SendGrid provider against a local fake of the mail-send API, with the real client."""

from __future__ import annotations

import threading

import pytest

from tests.support.fakes.redis_server import free_port
from tests.support.fakes.sendgrid import API_KEY, Reply
from tests.support.mail import EMAIL, SENDER, addressees, send_expecting_failure
from tribe_shared.contract import MAX_PERSONALIZATIONS
from tribe_worker.emails.sendgrid import SendGridProvider


@pytest.fixture
def provider(sendgrid) -> SendGridProvider:
    return SendGridProvider(API_KEY, sendgrid.url, timeout=2)


def test_accepted_email_returns_sendgrids_message_id(provider, sendgrid):
    message_id = provider.send(EMAIL, SENDER, addressees(1))

    (request,) = sendgrid.wait_for_requests(1)
    assert request.message_id
    assert message_id == request.message_id


def test_request_carries_bearer_auth_one_personalization_per_addressee_and_both_parts(
    provider, sendgrid
):
    to = addressees(3)

    provider.send(EMAIL, SENDER, to)

    (request,) = sendgrid.wait_for_requests(1)
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.body["personalizations"] == [
        {"to": [{"email": a.email}], "custom_args": {"job_id": str(a.job_id)}} for a in to
    ]
    assert request.body["from"] == {"email": SENDER.email}
    assert request.body["subject"] == EMAIL.subject
    assert request.body["content"] == [
        {"type": "text/plain", "value": EMAIL.text},
        {"type": "text/html", "value": EMAIL.html},
    ]


@pytest.mark.parametrize("status", [400, 401, 403, 413])
def test_client_error_is_a_permanent_failure_naming_the_status(provider, sendgrid, status):
    sendgrid.script(Reply(status, body={"errors": [{"message": "invalid address"}]}))

    error = send_expecting_failure(provider)

    assert error.transient is False
    assert str(status) in error.reason
    assert len(sendgrid.wait_for_requests(1)) == 1


def test_wrong_api_key_is_a_permanent_failure(sendgrid):
    provider = SendGridProvider("SG.not-the-key", sendgrid.url, timeout=2)

    error = send_expecting_failure(provider)

    assert error.transient is False
    assert "401" in error.reason


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_error_is_a_transient_failure(provider, sendgrid, status):
    sendgrid.script(Reply(status))

    error = send_expecting_failure(provider)

    assert error.transient is True
    assert str(status) in error.reason


def test_rate_limit_is_transient_and_waits_until_sendgrids_reset_time(sendgrid):
    # Given a provider whose clock reads 1_800_000_000.25 (epoch seconds), and SendGrid
    # throttling until 30 s later
    now = 1_800_000_000.25
    provider = SendGridProvider(API_KEY, sendgrid.url, timeout=2, clock=lambda: now)
    reset = 1_800_000_030
    sendgrid.script(Reply(429, headers={"X-RateLimit-Reset": str(reset)}))

    error = send_expecting_failure(provider)

    assert error.transient is True
    assert "429" in error.reason
    assert error.retry_after == reset - now


def test_rate_limit_without_a_reset_time_is_transient_with_no_wait_of_its_own(provider, sendgrid):
    sendgrid.script(Reply(429))

    error = send_expecting_failure(provider)

    assert error.transient is True
    assert error.retry_after is None


def test_reply_slower_than_the_timeout_is_a_transient_failure(sendgrid):
    # Given SendGrid answering 202 only after a second, and a provider that waits 0.3 s
    provider = SendGridProvider(API_KEY, sendgrid.url, timeout=0.3)
    sendgrid.script(Reply(delay=1))

    # When an email is sent, Then it fails, transiently, on the timeout: had the provider waited
    # for the answer, the send would have succeeded
    error = send_expecting_failure(provider)

    assert error.transient is True
    assert "timed out" in error.reason


def test_unreachable_sendgrid_is_a_transient_failure():
    provider = SendGridProvider(API_KEY, f"http://127.0.0.1:{free_port()}", timeout=2)

    error = send_expecting_failure(provider)

    assert error.transient is True
    assert "unreachable" in error.reason


@pytest.mark.parametrize("count", [0, MAX_PERSONALIZATIONS + 1])
def test_a_request_takes_one_to_a_thousand_addressees_checked_before_sending(
    provider, sendgrid, count
):
    with pytest.raises(ValueError, match=str(MAX_PERSONALIZATIONS)):
        provider.send(EMAIL, SENDER, addressees(count))

    assert sendgrid.requests == []


def test_a_thousand_addressees_go_out_in_one_request(provider, sendgrid):
    provider.send(EMAIL, SENDER, addressees(MAX_PERSONALIZATIONS))

    (request,) = sendgrid.wait_for_requests(1)
    assert len(request.body["personalizations"]) == MAX_PERSONALIZATIONS


# --- the connection ----------------------------------------------------------------------


def test_calls_from_one_thread_share_one_kept_alive_connection(provider, sendgrid):
    for _ in range(3):
        provider.send(EMAIL, SENDER, addressees(1))

    requests = sendgrid.wait_for_requests(3)
    assert len({r.connection for r in requests}) == 1


def test_each_thread_has_a_connection_of_its_own(provider, sendgrid):
    # Given two threads, each sending twice, one after the other
    def send_twice():
        provider.send(EMAIL, SENDER, addressees(1))
        provider.send(EMAIL, SENDER, addressees(1))

    for _ in range(2):
        thread = threading.Thread(target=send_twice)
        thread.start()
        thread.join(timeout=10)

    # Then each thread kept its connection, and the two never shared one
    first, second, third, fourth = sendgrid.wait_for_requests(4)
    assert first.connection == second.connection
    assert third.connection == fourth.connection
    assert first.connection != third.connection


def test_a_connection_sendgrid_closed_while_idle_is_replaced_without_a_failure(provider, sendgrid):
    # Given a kept-alive connection SendGrid closed after answering
    sendgrid.script(Reply(close=True))
    provider.send(EMAIL, SENDER, addressees(1))
    sendgrid.wait_for_closed_connections(1)

    # When the same thread sends again
    message_id = provider.send(EMAIL, SENDER, addressees(1))

    # Then it goes out on a new connection, and is accepted
    first, second = sendgrid.wait_for_requests(2)
    assert second.message_id == message_id
    assert second.connection != first.connection


def test_a_connection_dropped_during_a_request_is_transient_and_the_next_call_reconnects(
    provider, sendgrid
):
    # Given a connection that broke before SendGrid answered
    sendgrid.script(Reply(drop=True))
    error = send_expecting_failure(provider)
    assert error.transient is True
    assert "unreachable" in error.reason

    # When the same thread sends again, it connects afresh and is accepted
    message_id = provider.send(EMAIL, SENDER, addressees(1))

    dropped, accepted = sendgrid.wait_for_requests(2)
    assert accepted.message_id == message_id
    assert accepted.connection != dropped.connection


def test_after_a_timeout_the_late_answer_is_never_taken_for_the_next_calls(sendgrid):
    # Given a call abandoned at its timeout, its answer still to come on that connection
    provider = SendGridProvider(API_KEY, sendgrid.url, timeout=0.3)
    sendgrid.script(Reply(delay=1))
    send_expecting_failure(provider)

    # When the same thread sends again
    to = addressees(1)
    message_id = provider.send(EMAIL, SENDER, to)

    # Then it gets the answer to its own request, on a new connection
    requests = sendgrid.wait_for_requests(2)
    (answered,) = [r for r in requests if r.job_ids == [str(to[0].job_id)]]
    (late,) = [r for r in requests if r is not answered]
    assert message_id == answered.message_id
    assert answered.connection != late.connection


def test_sends_carry_the_official_clients_user_agent_and_a_json_body(provider, sendgrid):
    provider.send(EMAIL, SENDER, addressees(1))

    (request,) = sendgrid.wait_for_requests(1)
    assert request.headers["User-Agent"].startswith("sendgrid/")
    assert request.headers["Content-Type"] == "application/json"
