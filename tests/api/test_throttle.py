"""The per-user write limit: past ``USER_WRITE_RATE_PER_MINUTE`` changes a minute a user gets 429
with ``Retry-After``; other users, reads and the service role go on; API processes share it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import redis
from falcon import testing

from tests.conftest import with_settings
from tests.support.clocks import ManualClock
from tests.support.fakes.redis_server import RedisProcess
from tribe_api.app import create_app
from tribe_api.throttle import WINDOW_SECONDS

GROUPS = "/api/groups"
#: 30 s into a minute window.
START = 1_800_000_030.0


def api_with_limit(settings, redis_client, limit: int, clock=None) -> testing.TestClient:
    """The API with a write limit of ``limit``, on ``clock`` (epoch seconds) when given."""
    app_clock = None if clock is None else (lambda: datetime.fromtimestamp(clock(), UTC))
    limited = with_settings(settings, user_write_rate_per_minute=limit)
    if app_clock is None:
        return testing.TestClient(create_app(limited, redis_client=redis_client))
    return testing.TestClient(create_app(limited, redis_client=redis_client, clock=app_clock))


def post_group(api, headers, name="Family"):
    return api.simulate_post(GROUPS, json={"name": name}, headers=headers)


def test_a_user_past_the_limit_gets_429_with_retry_after_and_others_go_on(settings, client, tokens):
    # Given a limit of 3 changes a minute
    api = api_with_limit(settings, client, 3)

    # When Alice makes 4 changes in a row
    answers = [post_group(api, tokens.alice).status_code for _ in range(4)]

    # Then the 4th is refused, as JSON, saying when to come back; nothing was written for it
    assert answers == [201, 201, 201, 429]
    refused = post_group(api, tokens.alice)
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/json")
    assert {"title", "description"} <= set(refused.json)
    assert 1 <= int(refused.headers["retry-after"]) <= 2 * WINDOW_SECONDS
    assert len(api.simulate_get(GROUPS, headers=tokens.alice).json["groups"]) == 3
    # And Bob, Alice's reads and the service role are not held back
    assert post_group(api, tokens.bob).status_code == 201
    assert api.simulate_get(GROUPS, headers=tokens.alice).status_code == 200
    assert post_group(api, tokens.service).status_code == 201


def test_api_processes_share_the_limit_through_redis(settings, redis_url, tokens):
    # Given two API processes (two apps) on the same Redis, limit 3
    first, second = (
        testing.TestClient(
            create_app(
                with_settings(settings, user_write_rate_per_minute=3),
                redis_client=redis.Redis.from_url(redis_url),
            )
        )
        for _ in range(2)
    )

    # When Alice's changes go to either
    answers = [
        post_group(first, tokens.alice).status_code,
        post_group(second, tokens.alice).status_code,
        post_group(first, tokens.alice).status_code,
        post_group(second, tokens.alice).status_code,
    ]

    # Then they count together
    assert answers == [201, 201, 201, 429]


def test_the_limit_slides_with_the_minute_and_retry_after_is_right(settings, client, tokens):
    # Given a limit of 2, used up 30 s into a minute
    clock = ManualClock(START)
    api = api_with_limit(settings, client, 2, clock)
    assert [post_group(api, tokens.alice).status_code for _ in range(2)] == [201, 201]
    refused = post_group(api, tokens.alice)
    assert refused.status_code == 429
    wait = int(refused.headers["retry-after"])

    # Then just before the wait it is still refused, and once it has passed it is allowed
    clock.now = START + wait - 1.5
    assert post_group(api, tokens.alice).status_code == 429
    clock.now = START + wait
    assert post_group(api, tokens.alice).status_code == 201


def test_redis_trouble_never_refuses_a_change(settings, tokens):
    if not RedisProcess.available():
        pytest.fail("redis-server is not installed")
    # Given an API whose Redis goes away
    server = RedisProcess().start()
    api = testing.TestClient(
        create_app(
            with_settings(settings, user_write_rate_per_minute=50),
            redis_client=redis.Redis.from_url(
                server.url, socket_connect_timeout=0.5, socket_timeout=0.5
            ),
        )
    )
    assert post_group(api, tokens.alice).status_code == 201
    server.stop()

    # Then changes are still accepted, counted in the process meanwhile
    assert [post_group(api, tokens.alice).status_code for _ in range(3)] == [201] * 3
