"""The orchestrator's probes: /api/health/live answers without the database, /api/health/ready
only with the database reachable and every migration applied; HEAD on every health route."""

from __future__ import annotations

import pytest
from falcon import testing

from tribe_api.app import create_app
from tribe_shared.db import database, open_database
from tribe_shared.migrate import HISTORY_TABLE, migration_names, pending_migrations

HEALTH_ROUTES = ["/api/health", "/api/health/redis", "/api/health/live", "/api/health/ready"]


def test_liveness_answers_200_with_no_token(api):
    response = api.simulate_get("/api/health/live")

    assert response.status_code == 200
    assert response.json == {"status": "alive"}


def test_liveness_answers_while_the_database_is_down(settings, database_down):
    api = testing.TestClient(create_app(settings))

    assert api.simulate_get("/api/health/live").status_code == 200
    # while readiness and the system's health say the database is gone
    assert api.simulate_get("/api/health/ready").status_code == 503
    assert api.simulate_get("/api/health").status_code == 503


def test_readiness_is_200_with_the_database_migrated(api):
    response = api.simulate_get("/api/health/ready")

    assert response.status_code == 200
    assert response.json["status"] == "ready"
    assert response.json["database"]["connected"] is True
    assert response.json["pending_migrations"] == []


@pytest.fixture
def newest_migration_unapplied(db_url):
    """The database without its newest migration's record (the release job has not run yet);
    put back afterwards (the PostgreSQL database is shared by the run)."""
    newest = migration_names()[-1]
    history = f'"{HISTORY_TABLE}"'
    with database.connection_context():
        (applied,) = database.execute_sql(
            f'SELECT "applied" FROM {history} WHERE "name" = {database.param}', [newest]
        ).fetchone()
        database.execute_sql(f'DELETE FROM {history} WHERE "name" = {database.param}', [newest])
    yield newest
    values = f"({database.param}, {database.param})"
    with database.connection_context():
        database.execute_sql(
            f'INSERT INTO {history} ("name", "applied") VALUES {values}', [newest, applied]
        )


def test_readiness_is_503_naming_a_migration_not_applied_yet(api, newest_migration_unapplied):
    response = api.simulate_get("/api/health/ready")

    assert response.status_code == 503
    assert response.json["status"] == "not_ready"
    assert response.json["pending_migrations"] == [newest_migration_unapplied]


def test_a_database_never_migrated_has_every_migration_pending(tmp_path):
    empty = open_database(f"sqlite:///{tmp_path}/empty.db")
    with empty.connection_context():
        assert pending_migrations(empty) == migration_names()


@pytest.mark.parametrize("path", HEALTH_ROUTES)
def test_head_on_a_health_route_answers_its_status_without_a_body(api, path):
    get = api.simulate_get(path)

    head = api.simulate_head(path)

    assert head.status_code == get.status_code
    assert head.content == b""
