"""The bench's client of the API: emails accepted through ``send-bulk-email``, notifications
(the SMS phase's) through ``POST /api/notifications``."""

from __future__ import annotations

import http.client
import json
import time
from concurrent.futures import ThreadPoolExecutor

from common.safety import BenchError

BULK_PATH = "/api/notifications/send-bulk-email"
NOTIFICATIONS_PATH = "/api/notifications"
#: Connections the notifications are sent over at once (the API serves 2 x 4 threads).
NOTIFICATION_CLIENTS = 4
#: Most emails the API takes in one send-bulk-email request.
BULK_MAX = 1000


class Api:
    """A keep-alive client of the API's send-bulk-email and notifications endpoints."""

    def __init__(self, port: int, token: str):
        self.port = port
        self.headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def _post(self, path: str, payload: dict) -> dict:
        try:
            self.conn.request("POST", path, body=json.dumps(payload), headers=self.headers)
            resp = self.conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            raise
        if resp.status != 202:
            raise BenchError(f"POST {path} answered {resp.status}: {raw[:500]!r}")
        return json.loads(raw)

    def send_bulk(self, emails: list[dict]) -> list[dict]:
        jobs = self._post(BULK_PATH, {"emails": emails})["jobs"]
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

    def accept_notifications(self, notifications: list[dict]) -> tuple[list[str], float, set[str]]:
        """Send each notification in a request of its own, over :data:`NOTIFICATION_CLIENTS`
        kept-alive connections at once: (job ids, seconds, their statuses)."""
        token = self.headers["Authorization"].removeprefix("Bearer ")
        clients = [self] + [Api(self.port, token) for _ in range(NOTIFICATION_CLIENTS - 1)]
        shares = [notifications[i :: len(clients)] for i in range(len(clients))]

        def post_all(client: Api, share: list[dict]) -> list[dict]:
            return [client._post(NOTIFICATIONS_PATH, body) for body in share]

        started = time.perf_counter()
        try:
            with ThreadPoolExecutor(len(clients)) as pool:
                answered = list(pool.map(post_all, clients, shares))
        finally:
            for client in clients[1:]:
                client.close()
        seconds = time.perf_counter() - started
        jobs = [job for share in answered for job in share]
        return [job["jobId"] for job in jobs], seconds, {job["status"] for job in jobs}

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


def sms_notifications(recipients: list[tuple[str, str]], tag: str) -> list[dict]:
    """One SMS notification to each (recipient id, group id), each with its own text."""
    return [
        {
            "recipient_id": recipient_id,
            "group_id": group_id,
            "delivery_method": "sms",
            "content": {
                "title": f"News for reader {i}",
                "body": f"Ada took her first steps ({tag} #{i}).",
            },
        }
        for i, (recipient_id, group_id) in enumerate(recipients)
    ]
