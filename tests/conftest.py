"""Shared fixtures: a real database per test (SQLite file or this run's own PostgreSQL
database), the machine's Redis under this run's own key prefix, a fake SendGrid, a worker on a
StubBroker, and API clients.

A service the tests need but cannot reach skips its tests locally and fails them under CI=true.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import replace

import dramatiq
import psycopg2
import pytest
import redis
from dramatiq.brokers.stub import StubBroker
from falcon import testing

from tests.support.fakes.redis_server import free_port
from tests.support.fakes.sendgrid import API_KEY, FakeSendGrid
from tests.support.fakes.twilio import ACCOUNT_SID as TWILIO_ACCOUNT_SID
from tests.support.fakes.twilio import AUTH_TOKEN as TWILIO_AUTH_TOKEN
from tests.support.fakes.twilio import SMS_FROM as TWILIO_SMS_FROM
from tests.support.fakes.twilio import WHATSAPP_FROM as TWILIO_WHATSAPP_FROM
from tests.support.fakes.twilio import FakeTwilio
from tribe_api.app import create_app
from tribe_api.auth import mint_service_role_key, mint_token
from tribe_shared import db as shared_db
from tribe_shared.migrate import apply_migrations
from tribe_shared.models import ALL_MODELS
from tribe_shared.redis_broker import build_broker
from tribe_shared.settings import Settings
from tribe_worker.emails.sendgrid import SendGridProvider
from tribe_worker.worker import build_worker

IN_CI = os.environ.get("CI", "").lower() == "true"
#: This run's own suffix for database names and Redis key prefixes.
RUN_ID = f"{os.getpid()}_{secrets.token_hex(3)}"
POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
JWT_SECRET = "tribe-jobs-test-secret-" + secrets.token_hex(16)


def skip_unless_ci(message: str):
    """Skip a test whose service or tool is missing here, or fail it under CI=true, where
    every test must run."""
    if IN_CI:
        pytest.fail(f"{message} (CI=true: these tests must run)", pytrace=False)
    pytest.skip(message)


def unavailable(what: str, error: Exception):
    skip_unless_ci(f"{what} is not reachable: {error}")


# --- PostgreSQL -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """This run's own PostgreSQL database, migrated once and dropped at the end."""
    name = f"tribe_test_{RUN_ID}"
    try:
        admin = psycopg2.connect(POSTGRES_ADMIN_URL, connect_timeout=3)
    except psycopg2.OperationalError as exc:
        unavailable("PostgreSQL", exc)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    url = f"{base}/{name}"
    database = shared_db.bind(url)
    with database.connection_context():
        apply_migrations(database)
    database.close_all()
    yield url
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def _truncate_all(database) -> None:
    tables = ", ".join(model._meta.table_name for model in ALL_MODELS)
    with database.connection_context():
        database.execute_sql(f"TRUNCATE {tables} CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> Iterator[str]:
    """A migrated, empty database bound for this test: SQLite and PostgreSQL in turn."""
    if request.param == "sqlite":
        yield from _migrated_sqlite(tmp_path)
        return
    url = request.getfixturevalue("postgres_url")
    database = shared_db.bind(url)
    yield url
    _truncate_all(database)
    database.close_all()


@pytest.fixture
def database_down(db_url):
    """Point the shared database handle at a PostgreSQL port nobody listens on, then back."""
    bound = shared_db.database.obj
    unreachable = shared_db.bind(f"postgresql://postgres@127.0.0.1:{free_port()}/tribe")
    yield
    unreachable.close_all()
    shared_db.database.initialize(bound)


@pytest.fixture
def sqlite_url(tmp_path) -> Iterator[str]:
    """A migrated SQLite database, for tests about behaviour that does not vary by backend."""
    yield from _migrated_sqlite(tmp_path)


def _migrated_sqlite(tmp_path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path}/tribe.db"
    database = shared_db.bind(url)
    with database.connection_context():
        apply_migrations(database)
    yield url
    database.close()


# --- Redis ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable("Redis", exc)
    yield REDIS_URL
    for key in client.scan_iter(match=f"*{RUN_ID}*", count=1000):
        client.delete(key)


@pytest.fixture
def client(redis_url) -> Iterator[redis.Redis]:
    """A client of the real Redis (keys under :func:`redis_namespace`)."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def redis_namespace() -> str:
    """A Dramatiq namespace no other test or run shares."""
    return f"tribe-test-{RUN_ID}-{secrets.token_hex(3)}"


# --- Fakes, settings, brokers, clients --------------------------------------------------


@pytest.fixture
def sendgrid() -> Iterator[FakeSendGrid]:
    fake = FakeSendGrid().start()
    yield fake
    fake.stop()


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio().start()
    yield fake
    fake.stop()


@pytest.fixture
def twilio_app(settings, stub_broker, twilio):
    """Every actor declared on the stub broker, texting through the fake Twilio (and emailing
    through the fake SendGrid); status callbacks to ``https://tribe.test``."""
    twilio_settings = replace(
        settings,
        twilio_account_sid=TWILIO_ACCOUNT_SID,
        twilio_auth_token=TWILIO_AUTH_TOKEN,
        twilio_sms_from=TWILIO_SMS_FROM,
        twilio_whatsapp_from=TWILIO_WHATSAPP_FROM,
        twilio_api_base_url=twilio.url,
        api_public_url="https://tribe.test",
    )
    provider = SendGridProvider(settings.sendgrid_api_key, settings.sendgrid_api_host, timeout=2)
    return build_worker(twilio_settings, broker=stub_broker, provider=provider)


@pytest.fixture
def twilio_worker(twilio_app) -> Iterator[dramatiq.Worker]:
    worker = dramatiq.Worker(twilio_app.broker, worker_timeout=50, worker_threads=2)
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def twilio_api(twilio_app) -> testing.TestClient:
    """The API (Twilio's webhook verified with the fake's token, at ``https://tribe.test``)
    on the stub broker the Twilio-sending actors are declared on."""
    return testing.TestClient(create_app(twilio_app.context.settings, broker=twilio_app.broker))


@pytest.fixture
def settings(db_url, sendgrid, redis_namespace) -> Settings:
    return Settings(
        app_env="test",
        database_url=db_url,
        redis_namespace=redis_namespace,
        jwt_secret=JWT_SECRET,
        sendgrid_api_key=API_KEY,
        sendgrid_api_host=sendgrid.url,
        retry_backoff_ms=20,
        # Tests write as few users; the per-user write limit has tests of its own.
        user_write_rate_per_minute=1_000_000,
    )


@pytest.fixture
def stub_broker() -> Iterator[StubBroker]:
    broker = StubBroker(fail_fast_default=False)
    broker.emit_after("process_boot")
    yield broker
    broker.flush_all()
    broker.close()


@pytest.fixture
def worker_app(settings, stub_broker, sendgrid):
    """Every actor declared on the stub broker, sending through the fake SendGrid."""
    provider = SendGridProvider(settings.sendgrid_api_key, sendgrid.url, timeout=2)
    return build_worker(settings, broker=stub_broker, provider=provider)


@pytest.fixture
def stub_worker(worker_app) -> Iterator[dramatiq.Worker]:
    worker = dramatiq.Worker(worker_app.broker, worker_timeout=50, worker_threads=2)
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def api(settings, stub_broker, worker_app) -> testing.TestClient:
    """The API wired to the stub broker the worker's actors are declared on."""
    return testing.TestClient(create_app(settings, broker=stub_broker))


class Tokens:
    """Bearer headers for two ordinary users and the service role: as a user (``service``, a
    token with a ``sub``) and as the project's ``service_role`` key (``service_key``, none)."""

    def __init__(self, secret: str):
        self.secret = secret
        self.alice_id = uuid.uuid4()
        self.bob_id = uuid.uuid4()
        self.service_id = uuid.uuid4()

    def header(self, user_id: uuid.UUID, role: str = "authenticated") -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(self.secret, user_id=user_id, role=role)}"}

    @property
    def alice(self) -> dict[str, str]:
        return self.header(self.alice_id)

    @property
    def bob(self) -> dict[str, str]:
        return self.header(self.bob_id)

    @property
    def service(self) -> dict[str, str]:
        return self.header(self.service_id, role="service_role")

    @property
    def service_key(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_service_role_key(self.secret)}"}


@pytest.fixture
def tokens(settings) -> Tokens:
    return Tokens(settings.jwt_secret)


# --- the API and worker on the real Redis -----------------------------------------------


@pytest.fixture
def redis_settings(settings, redis_url):
    return replace(settings, redis_url=redis_url)


@pytest.fixture
def redis_client(redis_settings) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_settings.redis_url, socket_connect_timeout=1)
    yield client
    client.close()


@pytest.fixture
def redis_worker(redis_settings):
    """The worker's actors declared on a Redis broker of this test's namespace (none running)."""
    broker = build_broker(redis_settings)
    worker = build_worker(redis_settings, broker=broker)
    yield worker
    broker.close()


@pytest.fixture
def redis_api(redis_settings, redis_client, redis_worker) -> testing.TestClient:
    return testing.TestClient(
        create_app(redis_settings, broker=redis_worker.broker, redis_client=redis_client)
    )


def with_settings(settings: Settings, **changes) -> Settings:
    return replace(settings, **changes)
