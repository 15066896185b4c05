"""GET /metrics on the real gunicorn with two worker processes (the ``web`` fixture): whichever
process answers a scrape, it reports the requests of both; Redis stopped still scrapes; one JSON
log line per request, without the token."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import JWT_SECRET
from tests.support.prometheus import Scrape
from tests.support.waiting import wait_until
from tribe_api.auth import mint_token

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

COUNT = "tribe_http_requests_total"


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
