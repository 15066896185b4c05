"""A local mail sink for docker-compose: speaks SendGrid's v3 mail-send API, keeps what it
receives in memory and lists it on a page, so ``docker compose up`` sends no real email.

    python mailsink.py [--port 8025]

- ``POST /v3/mail/send``: what the worker's SendGrid provider posts (any ``Bearer`` key), answered
  as SendGrid does: 202, an ``X-Message-Id`` header, no body; a body that is not a mail-send
  request is a 400 in SendGrid's error shape.
- ``POST /alerts``: Alertmanager's webhook (compose's default ``ALERT_WEBHOOK_URL``).
- ``GET /``: the page: each email (time, recipients, subject, the job ids of its
  ``custom_args``, its text) and each alert notification, newest first.
- ``GET /messages.json``: the same as JSON.

Standard library only (the compose service runs it in a plain ``python`` image). Keeps the last
:data:`KEEP` of each; a restart forgets them.
"""

from __future__ import annotations

import argparse
import html
import json
import threading
import uuid
from collections import deque
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: Emails and alert notifications kept, each.
KEEP = 500
_lock = threading.Lock()
_emails: deque[dict] = deque(maxlen=KEEP)
_alerts: deque[dict] = deque(maxlen=KEEP)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def receive_email(body: dict) -> str:
    """Store a mail-send request; return its message id. Raises ValueError if it is none."""
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        raise ValueError("The personalizations field is required")
    message_id = uuid.uuid4().hex[:22]
    contents = {c.get("type"): c.get("value", "") for c in body.get("content") or []}
    for personalization in personalizations:
        email = {
            "received_at": _now(),
            "message_id": message_id,
            "to": [to.get("email", "") for to in personalization.get("to") or []],
            "subject": personalization.get("subject") or body.get("subject") or "",
            "job_id": (personalization.get("custom_args") or {}).get("job_id", ""),
            "text": contents.get("text/plain", ""),
        }
        with _lock:
            _emails.appendleft(email)
    return message_id


def receive_alerts(body: dict) -> None:
    with _lock:
        for alert in body.get("alerts") or []:
            labels = alert.get("labels") or {}
            _alerts.appendleft(
                {
                    "received_at": _now(),
                    "status": alert.get("status", ""),
                    "alertname": labels.get("alertname", ""),
                    "labels": labels,
                    "summary": (alert.get("annotations") or {}).get("summary", ""),
                }
            )


def page() -> str:
    with _lock:
        emails, alerts = list(_emails), list(_alerts)
    e = html.escape
    email_rows = "".join(
        f"<tr><td>{e(m['received_at'])}</td><td>{e(', '.join(m['to']))}</td>"
        f"<td>{e(m['subject'])}</td><td><code>{e(m['job_id'])}</code></td>"
        f"<td><pre>{e(m['text'][:2000])}</pre></td></tr>"
        for m in emails
    )
    alert_rows = "".join(
        f"<tr><td>{e(a['received_at'])}</td><td>{e(a['status'])}</td>"
        f"<td>{e(a['alertname'])}</td><td>{e(a['summary'])}</td></tr>"
        for a in alerts
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tribe mail sink</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;width:100%}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}}
pre{{white-space:pre-wrap;margin:0}}</style></head><body>
<h1>Tribe mail sink</h1>
<p>What the worker sent through SendGrid's API to this sink instead of SendGrid; nothing left
this machine. Newest first, the last {KEEP} kept.</p>
<h2>Emails ({len(emails)})</h2>
<table><tr><th>received</th><th>to</th><th>subject</th><th>job</th><th>text</th></tr>
{email_rows or '<tr><td colspan="5">none yet</td></tr>'}</table>
<h2>Alerts ({len(alerts)})</h2>
<table><tr><th>received</th><th>status</th><th>alert</th><th>summary</th></tr>
{alert_rows or '<tr><td colspan="4">none yet</td></tr>'}</table>
</body></html>"""


class Handler(BaseHTTPRequestHandler):
    server_version = "tribe-mailsink"

    def log_message(self, format, *args):
        pass

    def _json_body(self) -> dict | None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"null")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def _reply(
        self, status: int, body: bytes = b"", content_type: str = "application/json", **headers
    ):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        body = {"errors": [{"message": message, "field": None, "help": None}]}
        self._reply(status, json.dumps(body).encode())

    def do_POST(self):
        if self.path == "/v3/mail/send":
            if not (self.headers.get("Authorization") or "").startswith("Bearer "):
                return self._error(401, "The provided authorization grant is invalid")
            body = self._json_body()
            try:
                message_id = receive_email(body or {})
            except ValueError as exc:
                return self._error(400, str(exc))
            return self._reply(202, X_Message_Id=message_id)
        if self.path == "/alerts":
            receive_alerts(self._json_body() or {})
            return self._reply(200, b"{}")
        return self._error(404, "Not found")

    def do_GET(self):
        if self.path == "/":
            return self._reply(200, page().encode(), "text/html; charset=utf-8")
        if self.path == "/messages.json":
            with _lock:
                body = {"emails": list(_emails), "alerts": list(_alerts)}
            return self._reply(200, json.dumps(body).encode())
        return self._error(404, "Not found")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8025)
    options = parser.parse_args()
    server = ThreadingHTTPServer((options.host, options.port), Handler)
    print(f"mail sink on http://{options.host}:{options.port}/", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
