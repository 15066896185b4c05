"""AI digest summaries: asked by ``build_digest`` of a local fake speaking OpenAI's chat
completions (the real ``openai`` client runs), only for groups that opted in, sent titles and
text only, asked once per digest across retries, and never the cause of a failed or late
digest."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import dramatiq
import pytest

from tests.support.digests import post_update, schedule_for, tick
from tests.support.fakes.openai import API_KEY, SUMMARY, FakeOpenAI
from tests.support.fakes.openai import Reply as ModelReply
from tests.support.fakes.sendgrid import Reply
from tests.support.family import family
from tests.support.jobs import reload
from tests.support.mail import content_of
from tests.support.waiting import drain
from tribe_shared.contract import JobStatus
from tribe_shared.models import Group, Update, utcnow
from tribe_worker.emails.sendgrid import SendGridProvider
from tribe_worker.summaries import summary_calls, summary_duration, summary_tokens
from tribe_worker.worker import build_worker

AGE = timedelta(days=3)
#: The model's timeout in these tests.
TIMEOUT = 0.5


@pytest.fixture
def model() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI().start()
    yield fake
    fake.stop()


@pytest.fixture
def worker_app(settings, stub_broker, sendgrid, model):
    """The conftest worker, with a model for summaries."""
    with_model = replace(
        settings,
        openai_api_key=API_KEY,
        openai_base_url=model.url,
        openai_model="tribe-test-model",
        openai_timeout_seconds=TIMEOUT,
        openai_max_tokens=150,
    )
    provider = SendGridProvider(settings.sendgrid_api_key, sendgrid.url, timeout=2)
    return build_worker(with_model, broker=stub_broker, provider=provider)


@pytest.fixture
def fam(db_url):
    fam = family(email="nana@example.com", name="Nana Rose")
    Group.update(ai_summary=True, family_name="The Smiths").where(
        Group.id == fam.group.id
    ).execute()
    return fam


@pytest.fixture
def schedule(fam):
    return schedule_for(fam, utcnow() - AGE)


def two_updates(fam):
    now = utcnow()
    post_update(fam, now - timedelta(days=1), title="Park day", body="Swings and slides")
    photo = post_update(fam, now - timedelta(hours=1), title="First steps", body="Maya walked!")
    Update.update(media_urls=["https://media.example.com/secret-photo.jpg"]).where(
        Update.id == photo.id
    ).execute()


def counted(metric, **labels) -> float:
    return (metric.labels(**labels) if labels else metric)._value.get()


def test_an_opted_in_groups_digest_opens_with_the_models_summary(
    fam, schedule, stub_broker, stub_worker, sendgrid, model
):
    # Given a group that asked for summaries, with two updates
    two_updates(fam)
    written = counted(summary_calls, outcome="written")
    completion_tokens = counted(summary_tokens, kind="completion")
    latencies = summary_duration._sum.get()

    # When its digest is built and sent
    job = tick(schedule, stub_broker, utcnow())
    drain(stub_broker, stub_worker)

    # Then the email opens with the summary, above the updates
    (request,) = sendgrid.requests
    text = content_of(request, "text/plain")
    assert SUMMARY in text
    assert text.index(SUMMARY) < text.index("First steps")
    assert SUMMARY in content_of(request, "text/html")
    assert reload(job).status == JobStatus.SENT
    # And the model was asked once, bounded, with the configured model
    (asked,) = model.requests
    assert asked.body["model"] == "tribe-test-model"
    assert asked.body["max_tokens"] == 150
    # And the call, its tokens and its latency were counted
    assert counted(summary_calls, outcome="written") == written + 1
    assert counted(summary_tokens, kind="completion") == completion_tokens + 24
    assert summary_duration._sum.get() > latencies


def test_the_model_is_sent_titles_and_text_only(
    fam, schedule, stub_broker, stub_worker, sendgrid, model
):
    two_updates(fam)

    tick(schedule, stub_broker, utcnow())
    drain(stub_broker, stub_worker)

    (asked,) = model.requests
    prompt = asked.prompt
    for shown in ("Park day", "Swings and slides", "First steps", "Maya walked!"):
        assert shown in prompt
    for private in ("nana@example.com", "@", "https://", "secret-photo", "Nana Rose", "Smiths"):
        assert private not in prompt


def test_a_model_that_times_out_gives_the_plain_digest_on_time(
    fam, schedule, stub_broker, stub_worker, sendgrid, model
):
    # Given a model that does not answer
    model.default = ModelReply(hang=True)
    two_updates(fam)
    timeouts = counted(summary_calls, outcome="timeout")

    # When the digest is built
    job = tick(schedule, stub_broker, utcnow())
    drain(stub_broker, stub_worker)

    # Then the plain digest went out, in its first attempt, without a summary
    (request,) = sendgrid.requests
    assert "First steps" in content_of(request, "text/plain")
    assert SUMMARY not in content_of(request, "text/plain")
    job = reload(job)
    assert job.status == JobStatus.SENT
    assert job.attempts == 1 and job.retry_count == 0
    assert job.content["summary_outcome"] == "timeout"
    assert counted(summary_calls, outcome="timeout") == timeouts + 1
    # And the request waited only for the model's timeout
    assert request.received_at - model.requests[0].received_at < TIMEOUT + 2


def test_a_model_error_gives_the_plain_digest(
    fam, schedule, stub_broker, stub_worker, sendgrid, model
):
    model.default = ModelReply(status=500)
    two_updates(fam)

    job = tick(schedule, stub_broker, utcnow())
    drain(stub_broker, stub_worker)

    (request,) = sendgrid.requests
    assert "First steps" in content_of(request, "text/plain")
    assert reload(job).status == JobStatus.SENT
    assert reload(job).content["summary_outcome"] == "error"
    assert len(model.requests) == 1  # no retries of the client's own


def test_one_summary_per_digest_across_a_retry(
    fam, schedule, stub_broker, stub_worker, sendgrid, model
):
    # Given SendGrid failing the first attempt
    sendgrid.script(Reply(500))
    two_updates(fam)

    # When the digest is built, fails to send, and is retried
    job = tick(schedule, stub_broker, utcnow())
    drain(stub_broker, stub_worker)

    # Then both attempts carried the same summary, and the model was asked once
    first, second = sendgrid.requests
    assert SUMMARY in content_of(first, "text/plain")
    assert content_of(first, "text/plain") == content_of(second, "text/plain")
    assert len(model.requests) == 1
    job = reload(job)
    assert job.status == JobStatus.SENT and job.retry_count == 1
    assert job.content["summary"] == SUMMARY


def test_a_group_that_did_not_opt_in_gets_no_summary_and_the_model_is_not_asked(
    fam, schedule, stub_broker, stub_worker, sendgrid, model
):
    Group.update(ai_summary=False).where(Group.id == fam.group.id).execute()
    two_updates(fam)

    tick(schedule, stub_broker, utcnow())
    drain(stub_broker, stub_worker)

    assert model.requests == []
    assert SUMMARY not in content_of(sendgrid.requests[0], "text/plain")


def test_without_a_model_configured_an_opted_in_group_gets_the_plain_digest(
    settings, stub_broker, sendgrid, fam, schedule
):
    app = build_worker(
        settings,
        broker=stub_broker,
        provider=SendGridProvider(settings.sendgrid_api_key, sendgrid.url, timeout=2),
    )
    assert app.delivery.composer.summarizer is None
    two_updates(fam)
    worker = dramatiq.Worker(stub_broker, worker_timeout=50, worker_threads=1)
    worker.start()
    try:
        job = tick(schedule, stub_broker, utcnow())
        drain(stub_broker, worker)
    finally:
        worker.stop()

    assert reload(job).status == JobStatus.SENT
    assert "First steps" in content_of(sendgrid.requests[0], "text/plain")
    assert "summary_outcome" not in reload(job).content
