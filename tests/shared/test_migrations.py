"""Migrations: applied by the release process, idempotent, and in step with the models."""

import re
import subprocess
import sys
import uuid

import pytest
from playhouse.schema_diff import diff_models

from tribe_shared.db import database
from tribe_shared.migrate import MIGRATIONS_DIR, apply_migrations
from tribe_shared.models import ALL_MODELS, DigestSchedule, Group, NotificationJob, User, utcnow


def test_the_migrated_schema_matches_the_models(db_url):
    with database.connection_context():
        diff = diff_models(database.obj, list(ALL_MODELS))
    assert not diff, f"the models drifted from the migrations:\n{diff}"


def test_applying_migrations_again_changes_nothing(db_url):
    with database.connection_context():
        assert apply_migrations(database.obj) == []


def test_jobs_are_indexed_for_the_queries_that_read_them(db_url):
    with database.connection_context():
        indexes = database.get_indexes(NotificationJob._meta.table_name)
    indexed = {tuple(index.columns) for index in indexes}
    assert ("status", "scheduled_for") in indexed
    assert ("created_by_id", "created_at") in indexed
    # the job list: each sort for a user and for the service role
    for sort in (("created_at",), ("scheduled_for",), ("processed_at",), ("status", "created_at")):
        assert ("owner_id", *sort, "id") in indexed
        assert (*sort, "id") in indexed
    assert ("recipient_id", "created_at", "id", "owner_id") in indexed
    assert ("owner_id", "notification_type", "created_at", "id") in indexed
    assert ("group_id", "created_at", "id", "owner_id") in indexed
    partial = {index.name: index.sql for index in indexes}[
        "notification_jobs_delivery_method_not_email"
    ]
    assert "WHERE" in partial.upper()


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_indexes_built_concurrently_are_valid(db_url):
    # CREATE INDEX CONCURRENTLY (outside a transaction) leaves an invalid index when it fails
    with database.connection_context():
        invalid = database.execute_sql(
            "SELECT indexrelid::regclass::text FROM pg_index "
            "WHERE indrelid = 'notification_jobs'::regclass AND NOT indisvalid"
        ).fetchall()
    assert invalid == []


def test_the_optional_references_of_a_job_are_indexed_only_where_set(db_url):
    # An email has no recipient, group, update or schedule; a digest no sender or update: their
    # rows stay out of those indexes at every INSERT and UPDATE.
    with database.connection_context():
        jobs = {i.name: i.sql for i in database.get_indexes(NotificationJob._meta.table_name)}
        schedules = database.get_indexes(DigestSchedule._meta.table_name)
    for columns in (
        "created_by_id_created_at",
        "update_id",
        "recipient_id_created_at_id_owner_id",
        "group_id_created_at_id_owner_id",
        "digest_run_channel",
    ):
        reference = columns.split("_id")[0] + "_id"
        reference = "digest_schedule_id" if columns == "digest_run_channel" else reference
        where = re.search(r"\)\s*WHERE\s+(.*)$", jobs[f"notification_jobs_{columns}"], re.I | re.S)
        assert where and re.fullmatch(
            rf'\(*"?{reference}"?\s+IS\s+NOT\s+NULL\)*', where.group(1).strip(), re.I
        ), jobs[f"notification_jobs_{columns}"]
    # the unique (recipient, group) key serves a schedule's recipient: no index of its own
    assert ("recipient_id",) not in {tuple(index.columns) for index in schedules}


def test_the_release_command_migrates_an_empty_database_and_is_idempotent(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite:///{tmp_path}/release.db"}
    command = [f"{sys.prefix}/bin/tribe-migrate"]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    names = sorted(path.stem for path in MIGRATIONS_DIR.glob("[0-9]*.py"))
    assert f"{len(names)} applied ({', '.join(names)})" in first.stdout
    assert second.returncode == 0, second.stderr
    assert "0 applied (up to date)" in second.stdout


def test_a_group_written_without_ai_summary_gets_the_databases_default(db_url):
    # Given a group row written by other SQL than ours (the main app's), which leaves out the
    # column of migration 0013
    owner, group = uuid.uuid4(), uuid.uuid4()
    User.insert(id=owner).execute()
    insert = "INSERT INTO groups (id, owner_id, name, created_at) VALUES ({0}, {0}, 'G', {0})"
    database.execute_sql(
        insert.format(database.param),
        (group.hex, owner.hex, Group.created_at.db_value(utcnow())),
    )

    # Then it has no AI summary
    assert Group.get_by_id(group).ai_summary is False
