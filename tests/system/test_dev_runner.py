"""``tribe-dev`` (the README's first command): everything in one process on SQLite, no Redis."""

import re

import requests

from tests.support.fakes.redis_server import free_port
from tests.support.processes import BIN, Processes
from tests.support.prometheus import Scrape
from tests.support.waiting import wait_until


def test_the_dev_runner_accepts_an_email_and_writes_it_to_the_outbox(tmp_path):
    port = free_port()
    processes = Processes(tmp_path, {"PORT": str(port), "HOME": str(tmp_path)})
    try:
        processes.start("dev", f"{BIN}/tribe-dev", cwd=tmp_path)
        base = f"http://127.0.0.1:{port}"
        processes.wait_healthy(f"{base}/api/health", "dev")
        banner = wait_until(
            lambda: re.search(r"export TOKEN=(\S+)", processes.log("dev")),
            timeout=10,
            what="the development token",
        )
        log = processes.log("dev")
        assert "DEVELOPMENT MODE" in log
        assert f"curl -s -X POST {base}/api/notifications/send-email" in log

        response = requests.post(
            f"{base}/api/notifications/send-email",
            json={"to": "nana@example.com", "type": "welcome", "templateData": {"name": "Nana"}},
            headers={"Authorization": f"Bearer {banner.group(1)}"},
            timeout=5,
        )

        assert response.status_code == 202, response.text
        eml = tmp_path / "var" / "outbox" / f"{response.json()['jobId']}.eml"
        wait_until(eml.exists, timeout=10, what=f"{eml}\n{processes.log('dev')}")
        assert "Subject: Welcome to Tribe, Nana!" in eml.read_text()
        assert (tmp_path / "var" / "tribe.db").exists()
        # One process, no multiprocess directory: /metrics counts from the app's own registry
        metrics = Scrape(requests.get(f"{base}/metrics", timeout=5).text)
        sent = metrics.value(
            "tribe_http_requests_total",
            method="POST",
            route="/api/notifications/send-email",
            status="202",
        )
        assert sent == 1
        assert "POST /api/notifications/send-email 202" in processes.log("dev")
    finally:
        processes.stop_all()
