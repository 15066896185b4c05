"""Fixtures of the fault suite: whole deployments on real processes
(:mod:`tests.support.deployment`).

Each test runs release + web (gunicorn) + worker (dramatiq CLI) on a redis-server of its own with
shortened timings (:data:`tests.support.deployment.FAST_PROFILE`). Instead of waiting for
periodiq's minute, the periodic work (relay, reaper) runs on demand: called from the test process,
or as tick messages that worker processes consume. Each test prints its figures
(:mod:`tests.faults.figures`): accepted, sent, lost, duplicates, seconds (``pytest -s`` shows
them).

Every test under ``tests/faults/`` is marked ``faults`` (and ``e2e``): ``./tribe test`` runs them,
``./tribe test -m "not faults"`` leaves them out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import unavailable
from tests.support.deployment import FAST_PROFILE, Deployment, truncate_all
from tests.support.fakes.postgres_server import PostgresProcess
from tests.support.fakes.redis_server import RedisProcess
from tribe_shared import db
from tribe_shared.migrate import apply_migrations

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.faults)
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def deploy(postgres_url, sendgrid, tmp_path) -> Iterator[Callable[..., Deployment]]:
    """Start a :class:`Deployment` on this run's PostgreSQL database:
    ``deploy(worker=(processes, threads) | None, profile=FAST_PROFILE, **env)``. Everything
    started is stopped after."""
    if not RedisProcess.available():
        pytest.fail("redis-server is not installed")
    database = db.bind(postgres_url)
    truncate_all()
    started: list[Deployment] = []

    def start(
        *, worker: tuple[int, int] | None = (1, 2), profile=FAST_PROFILE, **env: str
    ) -> Deployment:
        deployment = Deployment(tmp_path, postgres_url, sendgrid, env, profile=profile)
        started.append(deployment)
        deployment.start_web()
        if worker is not None:
            deployment.start_worker(*worker)
        return deployment

    yield start
    try:
        for deployment in started:
            deployment.stop()
    finally:
        truncate_all()
        database.close_all()


@pytest.fixture
def private_postgres() -> Iterator[PostgresProcess]:
    """A PostgreSQL server of this test's own, migrated, to stop and start at will."""
    reason = PostgresProcess.unavailable_reason()
    if reason:
        unavailable("A private PostgreSQL server", RuntimeError(reason))
    server = PostgresProcess().start()
    database = db.bind(server.url)
    with database.connection_context():
        apply_migrations(database)
    try:
        yield server
    finally:
        database.close_all()
        server.destroy()
