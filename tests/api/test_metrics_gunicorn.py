"""GET /metrics on the real gunicorn with two worker processes: whichever process answers a
scrape, it reports the requests of both; Redis stopped still scrapes; one JSON log line per
request, without the token. And a 10 MB body, chunked or not, is refused at once."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import JWT_SECRET, RUN_ID
from tests.support.fakes.redis_server import RedisProcess, free_port
from tests.support.processes import BIN, Processes
from tests.support.prometheus import Scrape
from tests.support.waiting import wait_until
from tribe_api.auth import mint_token

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

COUNT = "tribe_http_requests_total"


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


def get(url: str, **kwargs) -> int:
    """One request on a connection of its own (so the two workers share the load)."""
    return requests.get(url, timeout=5, **kwargs).status_code


def processes_counting(metrics_dir) -> set[str]:
    """The worker processes that have counted a request (each writes counter_<pid>.db)."""
    return {path.stem.split("_", 1)[1] for path in metrics_dir.glob("counter_*.db")}


def test_a_scrape_sums_the_requests_of_both_gunicorn_workers(web):
    base, processes, metrics_dir, _ = web
    token = {"Authorization": f"Bearer {mint_token(JWT_SECRET)}"}
    # Then the file an earlier run left was wiped when gunicorn started
    assert not (metrics_dir / "counter_999999.db").exists()

    # When requests of three kinds arrive, in parallel, until both workers have served some
    sent = {"list": 0, "missing": 0, "unauthorized": 0}

    def batch():
        with ThreadPoolExecutor(max_workers=6) as pool:
            lists = [pool.submit(get, f"{base}/api/jobs", headers=token) for _ in range(10)]
            missing = [
                pool.submit(get, f"{base}/api/jobs/{uuid.uuid4()}", headers=token) for _ in range(6)
            ]
            unauthorized = [pool.submit(get, f"{base}/api/jobs") for _ in range(4)]
        assert {f.result() for f in lists} == {200}
        assert {f.result() for f in missing} == {404}
        assert {f.result() for f in unauthorized} == {401}
        sent["list"] += len(lists)
        sent["missing"] += len(missing)
        sent["unauthorized"] += len(unauthorized)
        return len(processes_counting(metrics_dir)) >= 2

    wait_until(batch, timeout=30, interval=0, what="requests served by both workers")

    # Then every scrape, whichever worker answers it, counts them all
    for _ in range(6):
        metrics = Scrape(requests.get(f"{base}/metrics", timeout=5).text)
        assert metrics.value(COUNT, method="GET", route="/api/jobs", status="200") == sent["list"]
        assert (
            metrics.value(COUNT, method="GET", route="/api/jobs", status="401")
            == (sent["unauthorized"])
        )
        assert (
            metrics.value(COUNT, method="GET", route="/api/jobs/{job_id}", status="404")
            == (sent["missing"])
        )
        assert metrics.value("tribe_redis_up") == 1
        assert metrics.value("tribe_database_up") == 1

    # And the log has one JSON line per request, with its route template, and never the token
    lines = [json.loads(line) for line in processes.log("web").splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "tribe_api.access"]
    missing = [line for line in access if line["route"] == "/api/jobs/{job_id}"]
    assert len(missing) == sent["missing"]
    assert {(line["method"], line["status"]) for line in missing} == {("GET", 404)}
    assert all(isinstance(line["duration_ms"], float) for line in missing)
    assert "Bearer" not in processes.log("web")


def test_a_scrape_with_redis_stopped_still_answers(web):
    base, _, _, redis_server = web
    redis_server.stop()

    response = requests.get(f"{base}/metrics", timeout=5)

    assert response.status_code == 200
    metrics = Scrape(response.text)
    assert metrics.value("tribe_redis_up") == 0
    assert metrics.value("tribe_database_up") == 1


def _post_big_body(port: int, token: str, *, chunked: bool, size: int = 10 * 1024 * 1024):
    """POST ``size`` bytes to /api/groups on a raw socket (Content-Length or chunked); return the
    status the server answered and the seconds until its status line arrived."""
    head = [
        "POST /api/groups HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        f"Authorization: Bearer {token}",
        "Content-Type: application/json",
        "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}",
        "",
        "",
    ]
    piece = b"a" * 65536

    def send(sock) -> None:
        try:
            for _ in range(size // len(piece)):
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed without reading the rest: as it should

    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        started = time.monotonic()
        sock.sendall("\r\n".join(head).encode())
        sender = threading.Thread(target=send, args=(sock,), daemon=True)
        sender.start()
        answer = b""
        while b"\r\n" not in answer:
            data = sock.recv(4096)
            if not data:
                break
            answer += data
        elapsed = time.monotonic() - started
    return int(answer.split(b" ", 2)[1]), elapsed


@pytest.mark.parametrize("chunked", [False, True], ids=["with Content-Length", "chunked"])
def test_a_10_mb_body_is_refused_with_413_within_a_second_by_the_real_server(web, chunked):
    base, *_ = web
    port = int(base.rsplit(":", 1)[1])
    status, seconds = _post_big_body(port, mint_token(JWT_SECRET), chunked=chunked)
    assert status == 413
    assert seconds < 1.0
