"""The bench's client of the API: emails accepted through ``send-bulk-email``."""

from __future__ import annotations

import http.client
import json
import time

from common.safety import BenchError

BULK_PATH = "/api/notifications/send-bulk-email"
#: Most emails the API takes in one send-bulk-email request.
BULK_MAX = 1000


class Api:
    """A keep-alive client of the API's send-bulk-email endpoint."""

    def __init__(self, port: int, token: str):
        self.port = port
        self.headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def send_bulk(self, emails: list[dict]) -> list[dict]:
        body = json.dumps({"emails": emails})
        try:
            self.conn.request("POST", BULK_PATH, body=body, headers=self.headers)
            resp = self.conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            raise
        if resp.status != 202:
            raise BenchError(f"send-bulk-email answered {resp.status}: {raw[:500]!r}")
        jobs = json.loads(raw)["jobs"]
        if len(jobs) != len(emails):
            raise BenchError(f"send-bulk-email returned {len(jobs)} jobs for {len(emails)}")
        return jobs

    def accept(self, emails: list[dict]) -> tuple[list[str], float, set[str]]:
        """Send ``emails`` in requests of at most 1000: (job ids, seconds, their statuses)."""
        started = time.perf_counter()
        ids, statuses = [], set()
        for start in range(0, len(emails), BULK_MAX):
            for job in self.send_bulk(emails[start : start + BULK_MAX]):
                ids.append(job["jobId"])
                statuses.add(job["status"])
        return ids, time.perf_counter() - started, statuses

    def close(self) -> None:
        self.conn.close()


def requests_for(emails: int) -> int:
    """How many send-bulk-email requests ``emails`` emails take."""
    return -(-emails // BULK_MAX)


def individual_emails(count: int, tag: str) -> list[dict]:
    """Emails whose content differs one from another, so none are batched together."""
    return [
        {
            "to": f"reader-{tag}-{i}@example.com",
            "type": "system",
            "subject": f"Bench {tag} {i}",
            "templateData": {
                "title": f"News for reader {i}",
                "message": f"Ada took her first steps ({tag} #{i}).",
            },
        }
        for i in range(count)
    ]


def identical_emails(count: int, tag: str) -> list[dict]:
    """Emails with the very same content to different addresses: batched by the API."""
    return [
        {
            "to": f"family-{tag}-{i}@example.com",
            "type": "system",
            "subject": "Ada's first steps",
            "templateData": {"title": "News from Tribe", "message": "Ada took her first steps."},
        }
        for i in range(count)
    ]
