"""Fixtures of the API's tests: the API on a broker whose Redis is down, and on the real
gunicorn."""

from __future__ import annotations

import uuid

import pytest
from dramatiq.brokers.redis import RedisBroker
from falcon import testing

from tests.conftest import JWT_SECRET, RUN_ID
from tests.support.fakes.redis_server import RedisProcess, free_port
from tests.support.processes import BIN, Processes
from tribe_api.app import create_app


@pytest.fixture
def web(postgres_url, tmp_path):
    """release + gunicorn (2 workers) on the run's PostgreSQL and a redis-server of its own."""
    if not RedisProcess.available():
        pytest.fail("redis-server is not installed")
    redis_server = RedisProcess().start()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"left by an earlier run")
    port = free_port()
    processes = Processes(
        tmp_path,
        {
            "APP_ENV": "test",
            "DATABASE_URL": postgres_url,
            "REDIS_URL": redis_server.url,
            "REDIS_NAMESPACE": f"tribe-metrics-{RUN_ID}-{uuid.uuid4().hex[:6]}",
            "JWT_SECRET": JWT_SECRET,
            "PORT": str(port),
            "WEB_CONCURRENCY": "2",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        },
    )
    try:
        release = processes.start("release", f"{BIN}/tribe-migrate")
        assert release.wait(60) == 0, processes.log("release")
        processes.start("web", f"{BIN}/gunicorn", "-c", "services/api/gunicorn.conf.py")
        base = f"http://127.0.0.1:{port}"
        processes.wait_healthy(f"{base}/api/health", "web")
        yield base, processes, metrics_dir, redis_server
    finally:
        processes.stop_all()
        redis_server.stop()


@pytest.fixture
def redis_down_api(settings):
    """The API on a real Redis broker whose Redis is not running (nobody listens on the port)."""
    broker = RedisBroker(url=f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    yield testing.TestClient(create_app(settings, broker=broker))
    broker.close()
